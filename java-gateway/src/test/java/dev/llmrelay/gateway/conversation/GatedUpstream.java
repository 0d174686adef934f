package dev.llmrelay.gateway.conversation;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockResponseBody;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import okio.BufferedSink;

/**
 * A mockwebserver3 upstream whose chat streams the test releases chunk by chunk, so a test can
 * act between two tokens (disconnect, reconnect, cancel) without timing anything. {@code /health}
 * always answers ready (the gateway probes it).
 */
final class GatedUpstream extends Dispatcher {

    private static final String DONE = "\u0000done";

    final MockWebServer server = new MockWebServer();
    private final BlockingQueue<GatedStream> streams = new LinkedBlockingQueue<>();
    final List<String> chatBodies = new ArrayList<>();

    GatedUpstream() throws IOException {
        server.setDispatcher(this);
        server.start();
    }

    String url() {
        return "http://127.0.0.1:" + server.getPort();
    }

    /** The next chat request will get this stream. */
    GatedStream nextStream() {
        GatedStream stream = new GatedStream();
        streams.add(stream);
        return stream;
    }

    /** Forgets scripted streams no request took, so they cannot answer a later test. */
    void clearUnused() {
        streams.clear();
    }

    @Override
    public MockResponse dispatch(RecordedRequest request) throws InterruptedException {
        String path = request.getUrl().encodedPath();
        if (path.equals("/health")) {
            return new MockResponse.Builder().code(200).addHeader("Content-Type", "application/json")
                    .body("{\"status\":\"ready\",\"model\":\"gated\"}").build();
        }
        if (path.equals("/v1/chat/completions")) {
            synchronized (chatBodies) {
                chatBodies.add(request.getBody() == null ? "" : request.getBody().utf8());
            }
            GatedStream stream = streams.poll(30, TimeUnit.SECONDS);
            if (stream == null) {
                return new MockResponse.Builder().code(500).body("{\"error\":{\"message\":\"no stream scripted\"}}").build();
            }
            return new MockResponse.Builder().code(200).addHeader("Content-Type", "text/event-stream")
                    .body(stream).build();
        }
        return new MockResponse.Builder().code(404).build();
    }

    @Override
    public void close() {
        super.close();
        server.close();
    }

    /** One upstream SSE stream: chunks go out when the test sends them. */
    static final class GatedStream implements MockResponseBody {

        private final BlockingQueue<String> pending = new LinkedBlockingQueue<>();
        final CountDownLatch started = new CountDownLatch(1);
        /** Counted down when a write fails: the gateway closed the upstream connection. */
        final CountDownLatch closedByGateway = new CountDownLatch(1);

        GatedStream token(String text) {
            pending.add("{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"gated\","
                    + "\"choices\":[{\"index\":0,\"delta\":{\"content\":" + quote(text) + "},\"finish_reason\":null}]}");
            return this;
        }

        /** finish_reason chunk, usage chunk, [DONE]. */
        GatedStream finish(String reason, int promptTokens, int completionTokens) {
            pending.add("{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"gated\","
                    + "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"" + reason + "\"}]}");
            pending.add("{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"gated\","
                    + "\"choices\":[],\"usage\":{\"prompt_tokens\":" + promptTokens + ",\"completion_tokens\":"
                    + completionTokens + ",\"total_tokens\":" + (promptTokens + completionTokens) + "}}");
            pending.add("[DONE]");
            pending.add(DONE);
            return this;
        }

        @Override
        public long getContentLength() {
            return -1;
        }

        @Override
        public void writeTo(BufferedSink sink) throws IOException {
            started.countDown();
            try {
                sink.writeUtf8("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":0,"
                        + "\"model\":\"gated\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                        + "\"content\":\"\"},\"finish_reason\":null}]}\n\n");
                sink.flush();
                while (true) {
                    String next = pending.poll(200, TimeUnit.MILLISECONDS);
                    if (next == null) {
                        // keep probing the socket so a gateway that hung up is noticed
                        sink.writeUtf8(": keepalive\n\n");
                        sink.flush();
                        continue;
                    }
                    if (next.equals(DONE)) {
                        return;
                    }
                    sink.writeUtf8("data: " + next + "\n\n");
                    sink.flush();
                }
            } catch (IOException closed) {
                closedByGateway.countDown();
                throw closed;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException(e);
            }
        }

        private static String quote(String text) {
            return "\"" + text.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\"";
        }
    }
}

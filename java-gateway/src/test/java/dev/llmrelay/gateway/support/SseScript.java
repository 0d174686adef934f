package dev.llmrelay.gateway.support;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import mockwebserver3.MockResponse;
import okio.BufferedSink;

/**
 * An upstream SSE body written step by step: events, waits on latches (so a test controls when the next
 * event is produced), a socket that dies, or events that go on until the client is gone.
 */
public final class SseScript {

    private interface Step {
        void run(ChunkedWriter out) throws IOException, InterruptedException;
    }

    /** Writes HTTP/1.1 chunked framing by hand, as uvicorn does, so a test can also break it off. */
    private static final class ChunkedWriter {
        private final okio.Socket socket;
        private final BufferedSink sink;

        ChunkedWriter(okio.Socket socket) {
            this.socket = socket;
            this.sink = okio.Okio.buffer(socket.getSink());
        }

        void event(String data) throws IOException {
            byte[] bytes = ("data: " + data + "\n\n").getBytes(java.nio.charset.StandardCharsets.UTF_8);
            sink.writeUtf8(Integer.toHexString(bytes.length) + "\r\n").write(bytes).writeUtf8("\r\n");
            sink.flush();
        }

        void end() throws IOException {
            sink.writeUtf8("0\r\n\r\n");
            sink.flush();
        }

        /** The process dies: the connection drops before the body's last chunk. */
        void die() {
            socket.cancel();
        }
    }

    private final List<Step> steps = new ArrayList<>();
    /** Trips when a write to the gateway fails: the gateway closed (cancelled) the upstream call. */
    public final CountDownLatch upstreamSocketClosed = new CountDownLatch(1);
    /** Trips when the body starts: the request reached the upstream and headers went out. */
    public final CountDownLatch started = new CountDownLatch(1);

    public static String chunk(String id, String content, String finishReason) {
        String delta = content == null ? "{}" : "{\"content\":" + quote(content) + "}";
        String finish = finishReason == null ? "null" : "\"" + finishReason + "\"";
        return "{\"id\":\"" + id + "\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"smollm2\","
                + "\"choices\":[{\"index\":0,\"delta\":" + delta + ",\"finish_reason\":" + finish + "}]}";
    }

    public static String usageChunk(String id, int prompt, int completion) {
        return "{\"id\":\"" + id + "\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"smollm2\","
                + "\"choices\":[],\"usage\":{\"prompt_tokens\":" + prompt + ",\"completion_tokens\":" + completion
                + ",\"total_tokens\":" + (prompt + completion) + "}}";
    }

    static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\"";
    }

    /** A complete answer: the given tokens, finish_reason stop, usage, [DONE]. */
    public static SseScript answer(String id, int promptTokens, String... tokens) {
        SseScript script = new SseScript();
        for (String token : tokens) {
            script.event(chunk(id, token, null));
        }
        script.event(chunk(id, null, "stop")).event(usageChunk(id, promptTokens, tokens.length)).done();
        return script;
    }

    public SseScript event(String data) {
        steps.add(out -> out.event(data));
        return this;
    }

    public SseScript done() {
        return event("[DONE]");
    }

    /** Counts down {@code latch}, then waits for it to open (all streams reached this point together). */
    public SseScript countDownAndAwait(CountDownLatch latch) {
        steps.add(out -> latch.countDown());
        return await(latch);
    }

    public SseScript await(CountDownLatch latch) {
        steps.add(out -> {
            if (!latch.await(30, TimeUnit.SECONDS)) {
                throw new IOException("scripted upstream: latch never opened");
            }
        });
        return this;
    }

    /** Waits {@code duration} before the next step (a stream that takes its time, not a fault). */
    public SseScript pause(java.time.Duration duration) {
        steps.add(out -> Thread.sleep(duration.toMillis()));
        return this;
    }

    /** The upstream process dies: the connection drops without the chunked body's end. */
    public SseScript die() {
        steps.add(out -> {
            out.die();
            throw new Died();
        });
        return this;
    }

    /** Keeps producing tokens until a write fails (the gateway went away), then trips {@link #upstreamSocketClosed}. */
    public SseScript tokensUntilClosed(String id) {
        steps.add(out -> {
            for (int i = 0; i < 6000; i++) {
                out.event(chunk(id, "t" + i, null));
                Thread.sleep(5);
            }
        });
        return this;
    }

    /** Ends the step list early after {@link #die()}. */
    private static final class Died extends RuntimeException {
    }

    public MockResponse response() {
        return new MockResponse.Builder()
                .setHeader("Content-Type", "text/event-stream")
                .setHeader("Transfer-Encoding", "chunked")
                .socketHandler(socket -> {
                    started.countDown();
                    ChunkedWriter out = new ChunkedWriter(socket);
                    try {
                        for (Step step : steps) {
                            step.run(out);
                        }
                        out.end();
                    } catch (Died e) {
                        // the connection is gone on purpose
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        socket.cancel();
                    } catch (IOException e) {
                        upstreamSocketClosed.countDown(); // a write failed: the gateway closed the call
                        socket.cancel();
                    }
                })
                .build();
    }
}

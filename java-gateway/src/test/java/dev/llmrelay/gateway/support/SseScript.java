package dev.llmrelay.gateway.support;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import mockwebserver3.MockResponse;
import mockwebserver3.MockResponseBody;
import okio.BufferedSink;

/**
 * An upstream SSE body written step by step: events, waits on latches (so a test controls when the next
 * event is produced), a socket that dies, or events that go on until the client is gone.
 */
public final class SseScript {

    private interface Step {
        void run(BufferedSink sink) throws IOException, InterruptedException;
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
        steps.add(sink -> {
            sink.writeUtf8("data: " + data + "\n\n");
            sink.flush();
        });
        return this;
    }

    public SseScript done() {
        return event("[DONE]");
    }

    public SseScript await(CountDownLatch latch) {
        steps.add(sink -> {
            if (!latch.await(30, TimeUnit.SECONDS)) {
                throw new IOException("scripted upstream: latch never opened");
            }
        });
        return this;
    }

    /** The upstream process dies: the connection drops without the chunked body's end. */
    public SseScript die() {
        steps.add(sink -> {
            throw new IOException("scripted upstream death");
        });
        return this;
    }

    /** Keeps producing tokens until a write fails (the gateway went away), then trips {@link #upstreamSocketClosed}. */
    public SseScript tokensUntilClosed(String id) {
        steps.add(sink -> {
            for (int i = 0; i < 6000; i++) {
                sink.writeUtf8("data: " + chunk(id, "t" + i, null) + "\n\n");
                sink.flush();
                Thread.sleep(5);
            }
        });
        return this;
    }

    public MockResponse response() {
        return new MockResponse.Builder()
                .setHeader("Content-Type", "text/event-stream")
                .body(new MockResponseBody() {
                    @Override
                    public long getContentLength() {
                        return -1;
                    }

                    @Override
                    public void writeTo(BufferedSink sink) throws IOException {
                        started.countDown();
                        try {
                            for (Step step : steps) {
                                step.run(sink);
                            }
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                            throw new IOException(e);
                        } catch (IOException e) {
                            if (!"scripted upstream death".equals(e.getMessage())) {
                                upstreamSocketClosed.countDown();
                            }
                            throw e;
                        }
                    }
                })
                .build();
    }
}

package dev.llmrelay.gateway.support;

import java.io.IOException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;

import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;

/**
 * A real HTTP server (mockwebserver3) standing in for a model-service; each test scripts its answers.
 * The name says it: a scripted upstream is a fake, used to inject timing and faults.
 */
public final class ScriptedUpstream {

    private final MockWebServer server = new MockWebServer();
    private final AtomicReference<Function<RecordedRequest, MockResponse>> script = new AtomicReference<>();
    private final CopyOnWriteArrayList<RecordedRequest> requests = new CopyOnWriteArrayList<>();

    public ScriptedUpstream() {
        server.setDispatcher(new Dispatcher() {
            @Override
            public MockResponse dispatch(RecordedRequest request) {
                requests.add(request);
                Function<RecordedRequest, MockResponse> current = script.get();
                return current != null ? current.apply(request) : new MockResponse.Builder().code(404).build();
            }
        });
        try {
            server.start(java.net.InetAddress.getLoopbackAddress(), 0);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public String baseUrl() {
        return "http://127.0.0.1:" + server.getPort();
    }

    /** Answers every request with {@code answer}, and counts requests from now. */
    public void answer(Function<RecordedRequest, MockResponse> answer) {
        requests.clear();
        script.set(answer);
    }

    public java.util.List<RecordedRequest> requests() {
        return requests;
    }

    /** The chat requests it got, in order (not health probes or model lists). */
    public java.util.List<RecordedRequest> chats() {
        return requests.stream().filter(r -> r.getUrl().encodedPath().equals("/v1/chat/completions")).toList();
    }

    /** How many chat requests it got. */
    public long chatRequests() {
        return chats().size();
    }

    /** Stops the server (a test's own upstream, see FreshGateway). */
    public void close() {
        server.close();
    }
}

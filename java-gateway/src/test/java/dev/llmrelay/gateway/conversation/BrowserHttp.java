package dev.llmrelay.gateway.conversation;

import static dev.llmrelay.gateway.conversation.SseClient.streamPath;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/**
 * A browser's calls to one gateway instance's /api over real HTTP; each call names its session cookie.
 * Public for the browser-API checks of other features (content filter, system prompts).
 */
public final class BrowserHttp {

    private final HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    private final int port;

    public BrowserHttp(int port) {
        this.port = port;
    }

    public String url(String path) {
        return "http://127.0.0.1:" + port + path;
    }

    /** Signs in with an API key and returns the session cookie as a Cookie header value. */
    public String signIn(String apiKey) throws IOException, InterruptedException {
        HttpResponse<String> response = post("/api/session", "{\"apiKey\":\"" + apiKey + "\"}", null);
        assertThat(response.statusCode()).as(response.body()).isEqualTo(204);
        return response.headers().firstValue("Set-Cookie").orElseThrow().split(";", 2)[0];
    }

    public HttpResponse<String> get(String path, String cookie) throws IOException, InterruptedException {
        return send(request(path).GET(), cookie);
    }

    public HttpResponse<String> post(String path, String body, String cookie) throws IOException, InterruptedException {
        return send(request(path).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)), cookie);
    }

    public HttpResponse<String> delete(String path, String cookie) throws IOException, InterruptedException {
        return send(request(path).DELETE(), cookie);
    }

    public HttpRequest.Builder request(String path) {
        return HttpRequest.newBuilder(URI.create(url(path)));
    }

    /** A reply's event stream, resumed after {@code lastEventId} when it is not null. */
    public SseClient stream(String messageId, String cookie, String lastEventId) throws IOException, InterruptedException {
        return SseClient.open(client, url(streamPath(messageId)), cookie, lastEventId);
    }

    public HttpResponse<String> send(HttpRequest.Builder request, String cookie)
            throws IOException, InterruptedException {
        if (cookie != null) {
            request.header("Cookie", cookie);
        }
        return client.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }
}

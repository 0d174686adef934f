package dev.llmrelay.gateway.keys;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import dev.llmrelay.gateway.support.FreshGateway;

/**
 * The console's session: the admin token buys an HttpOnly, SameSite=Strict cookie the admin API accepts like
 * the token; changes made with it need X-Relay-Console (CSRF), and a cookie not signed with this gateway's
 * token, or tampered with, is refused. A gateway of each test's own.
 */
class AdminSessionTest {

    @RegisterExtension
    final FreshGateway.PerTest gateway = FreshGateway.perTest(1);

    private final HttpClient http = HttpClient.newHttpClient();

    private HttpResponse<String> call(String method, String path, String body, String... headers) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(gateway.get().url(path)))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        if (body != null) {
            request.header("Content-Type", "application/json");
        }
        for (int i = 0; i < headers.length; i += 2) {
            request.header(headers[i], headers[i + 1]);
        }
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    private String signIn() throws Exception {
        HttpResponse<String> response = call("POST", "/admin/session", "{\"token\":\"" + FreshGateway.ADMIN_TOKEN + "\"}");
        assertThat(response.statusCode()).as(response.body()).isEqualTo(204);
        String cookie = response.headers().firstValue("Set-Cookie").orElseThrow();
        assertThat(cookie).startsWith(AdminSessions.COOKIE + "=").contains("HttpOnly").contains("SameSite=Strict")
                .contains("Path=/").contains("Max-Age=28800");
        return cookie.split(";", 2)[0];
    }

    @Test
    void theCookieStandsForTheTokenAndChangesNeedTheConsoleHeader() throws Exception {
        assertThat(call("GET", "/admin/session", null).statusCode()).isEqualTo(401);
        String cookie = signIn();
        assertThat(call("GET", "/admin/session", null, "Cookie", cookie).statusCode()).isEqualTo(204);
        assertThat(call("GET", "/admin/keys", null, "Cookie", cookie).statusCode()).isEqualTo(200);

        HttpResponse<String> forged = call("POST", "/admin/keys", "{\"name\":\"csrf\"}", "Cookie", cookie);
        assertThat(forged.statusCode()).isEqualTo(403);
        assertThat(forged.body()).contains("X-Relay-Console");
        assertThat(call("GET", "/admin/keys", null, "Cookie", cookie).body()).doesNotContain("csrf");
        assertThat(call("POST", "/admin/keys", "{\"name\":\"console\"}", "Cookie", cookie, "X-Relay-Console", "1")
                .statusCode()).isEqualTo(201);

        HttpResponse<String> out = call("DELETE", "/admin/session", null, "Cookie", cookie, "X-Relay-Console", "1");
        assertThat(out.statusCode()).isEqualTo(204);
        assertThat(out.headers().firstValue("Set-Cookie").orElseThrow()).startsWith(AdminSessions.COOKIE + "=;")
                .contains("Max-Age=0");
    }

    @Test
    void aWrongTokenATamperedCookieOrAnotherGatewaysCookieIsRefused() throws Exception {
        HttpResponse<String> wrong = call("POST", "/admin/session", "{\"token\":\"guess\"}");
        assertThat(wrong.statusCode()).isEqualTo(401);
        assertThat(wrong.headers().firstValue("Set-Cookie")).isEmpty();
        assertThat(call("POST", "/admin/session", "{\"token\":\"x\",\"user\":\"root\"}").statusCode()).isEqualTo(400);
        assertThat(call("POST", "/admin/session", "[]").statusCode()).isEqualTo(400);

        String cookie = signIn();
        String value = cookie.substring(cookie.indexOf('=') + 1);
        long expires = Long.parseLong(value.substring(0, value.indexOf('.')));
        String longer = AdminSessions.COOKIE + "=" + (expires + 86_400_000L) + value.substring(value.indexOf('.'));
        assertThat(call("GET", "/admin/keys", null, "Cookie", longer).statusCode()).isEqualTo(401);
        assertThat(call("GET", "/admin/keys", null, "Cookie", AdminSessions.COOKIE + "=1.abc").statusCode()).isEqualTo(401);
        assertThat(call("GET", "/admin/keys", null, "Cookie", AdminSessions.COOKIE + "=junk").statusCode()).isEqualTo(401);
        try (FreshGateway other = FreshGateway.start("--gateway.admin-token=another-token")) {
            HttpResponse<String> elsewhere = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                    URI.create(other.url("/admin/keys"))).header("Cookie", cookie).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(elsewhere.statusCode()).isEqualTo(401);
        }
    }
}

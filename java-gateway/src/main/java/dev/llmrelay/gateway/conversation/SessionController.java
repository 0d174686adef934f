package dev.llmrelay.gateway.conversation;

import java.util.LinkedHashMap;
import java.util.Map;

import jakarta.servlet.http.HttpServletRequest;

import org.springframework.http.HttpHeaders;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

/** Sign in with an API key (sets the session cookie), see who is signed in, sign out. */
@RestController
@RequestMapping("/api/session")
class SessionController {

    private final BrowserSessionService sessions;

    SessionController(BrowserSessionService sessions) {
        this.sessions = sessions;
    }

    record SignIn(String apiKey) {
    }

    @PostMapping
    ResponseEntity<Void> signIn(@RequestBody SignIn body, HttpServletRequest request) {
        if (body == null || body.apiKey() == null || body.apiKey().isBlank()) {
            throw ApiProblem.badRequest("apiKey is required.");
        }
        return ResponseEntity.noContent()
                .header(HttpHeaders.SET_COOKIE, sessions.signIn(body.apiKey(), request).toString())
                .header(HttpHeaders.CACHE_CONTROL, "no-store")
                .build();
    }

    @GetMapping
    Map<String, Object> current(BrowserSession session) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("keyName", session.key().name());
        body.put("keyPrefix", session.key().prefix());
        return body;
    }

    @DeleteMapping
    ResponseEntity<Void> signOut(HttpServletRequest request) {
        return ResponseEntity.noContent()
                .header(HttpHeaders.SET_COOKIE, sessions.signOut(request).toString())
                .build();
    }
}

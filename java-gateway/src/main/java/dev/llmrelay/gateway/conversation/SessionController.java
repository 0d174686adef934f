package dev.llmrelay.gateway.conversation;

import dev.llmrelay.gateway.system.ApiProblem;

import jakarta.servlet.http.HttpServletRequest;

import org.springframework.http.HttpHeaders;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

import io.swagger.v3.oas.annotations.headers.Header;
import io.swagger.v3.oas.annotations.media.Schema;
import io.swagger.v3.oas.annotations.responses.ApiResponse;
import io.swagger.v3.oas.annotations.security.SecurityRequirement;
import io.swagger.v3.oas.annotations.tags.Tag;

/** Sign in with an API key (sets the session cookie), see who is signed in, sign out. */
@Tag(name = "Browser API")
@RestController
@RequestMapping("/api/session")
class SessionController {

    private final BrowserSessionService sessions;

    SessionController(BrowserSessionService sessions) {
        this.sessions = sessions;
    }

    record SignIn(@Schema(requiredMode = Schema.RequiredMode.REQUIRED, pattern = "\\S") String apiKey) {
    }

    record SessionView(String keyName, String keyPrefix) {
    }

    @ApiResponse(responseCode = "204", description = "Signed in: Set-Cookie relay_session (HttpOnly)",
            headers = @Header(name = "Set-Cookie", schema = @Schema(type = "string")))
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

    @SecurityRequirement(name = BrowserWebConfig.SECURITY)
    @GetMapping
    SessionView current(BrowserSession session) {
        return new SessionView(session.key().name(), session.key().prefix());
    }

    @ApiResponse(responseCode = "204", description = "Signed out: Set-Cookie clears relay_session",
            headers = @Header(name = "Set-Cookie", schema = @Schema(type = "string")))
    @DeleteMapping
    ResponseEntity<Void> signOut(HttpServletRequest request) {
        return ResponseEntity.noContent()
                .header(HttpHeaders.SET_COOKIE, sessions.signOut(request).toString())
                .build();
    }
}

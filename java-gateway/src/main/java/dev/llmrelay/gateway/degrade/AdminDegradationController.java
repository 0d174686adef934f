package dev.llmrelay.gateway.degrade;

import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PatchMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

import com.fasterxml.jackson.databind.JsonNode;

import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.media.Content;
import io.swagger.v3.oas.annotations.media.Schema;
import io.swagger.v3.oas.annotations.security.SecurityRequirement;
import io.swagger.v3.oas.annotations.tags.Tag;

/**
 * Admin API for degradation: switches and fallback routes (stored, applied by every instance) and each
 * pool's concurrency limit. Errors are RFC 9457 problem details; a refused change changes nothing.
 */
@Tag(name = "Admin: degradation")
@SecurityRequirement(name = "adminToken")
@RestController
@RequestMapping("/admin/degradation")
class AdminDegradationController {

    private final DegradeAdmin admin;

    AdminDegradationController(DegradeAdmin admin) {
        this.admin = admin;
    }

    @Operation(summary = "The degradation policy in force and each pool's concurrency limit")
    @GetMapping
    DegradeAdmin.View get() {
        return admin.view();
    }

    @Operation(summary = "Change switches and fallback routes (JSON merge patch: a member set to null is removed)",
            description = "{\"maxTokensCap\": 256 | null, \"pausedModels\": {\"<model or pool>\": \"message\" | null}, "
                    + "\"refuseNewConversations\": \"message\" | true | false, "
                    + "\"fallbacks\": {\"<pool>\": \"<model with a pool of its own>\" | null}}")
    @io.swagger.v3.oas.annotations.parameters.RequestBody(content = @Content(mediaType = "application/json",
            schema = @Schema(type = "object", additionalProperties = Schema.AdditionalPropertiesValue.TRUE)))
    @PatchMapping
    DegradeAdmin.View patch(@RequestBody(required = false) JsonNode body) {
        admin.apply(body);
        return admin.view();
    }

}

package dev.llmrelay.gateway.identity;

import java.util.List;

import io.swagger.v3.oas.annotations.responses.ApiResponse;
import io.swagger.v3.oas.annotations.security.SecurityRequirement;
import io.swagger.v3.oas.annotations.tags.Tag;

import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PutMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

import dev.llmrelay.gateway.identity.SystemPrompts.PromptChange;

/**
 * Admin API for system prompts: per model ({@code /models/{model}}, the model id may contain '/') and
 * per API key ({@code /keys/{id}}).
 */
@Tag(name = "Admin: system prompts")
@SecurityRequirement(name = "adminToken")
@RestController
@RequestMapping("/admin/system-prompts")
class AdminSystemPromptsController {

    private final SystemPrompts prompts;

    AdminSystemPromptsController(SystemPrompts prompts) {
        this.prompts = prompts;
    }

    @GetMapping
    List<SystemPrompt> list() {
        return prompts.all();
    }

    @PutMapping("/keys/{id}")
    SystemPrompt putForKey(@PathVariable long id, @RequestBody(required = false) PromptChange change) {
        return prompts.putForKey(id, change);
    }

    @ApiResponse(responseCode = "204", description = "Deleted")
    @DeleteMapping("/keys/{id}")
    ResponseEntity<Void> deleteForKey(@PathVariable long id) {
        prompts.delete(SystemPrompts.KEY, Long.toString(id));
        return ResponseEntity.noContent().build();
    }

    @PutMapping("/models/{*model}")
    SystemPrompt putForModel(@PathVariable String model, @RequestBody(required = false) PromptChange change) {
        return prompts.putForModel(strip(model), change);
    }

    @ApiResponse(responseCode = "204", description = "Deleted")
    @DeleteMapping("/models/{*model}")
    ResponseEntity<Void> deleteForModel(@PathVariable String model) {
        prompts.delete(SystemPrompts.MODEL, strip(model));
        return ResponseEntity.noContent().build();
    }

    /** {*model} captures the rest of the path with its leading '/'. */
    private static String strip(String model) {
        return model.startsWith("/") ? model.substring(1) : model;
    }
}

package dev.llmrelay.gateway.identity;

import java.time.Clock;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.springframework.stereotype.Service;

import io.swagger.v3.oas.annotations.media.Schema;

import dev.llmrelay.gateway.system.ApiProblem;
import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.keys.ApiKeyService;
import dev.llmrelay.gateway.policy.LiveSnapshot;
import dev.llmrelay.gateway.policy.PolicyVersions;
import dev.llmrelay.gateway.upstream.UpstreamModels;
import dev.llmrelay.gateway.upstream.UpstreamPool;

/**
 * The operator's system prompts (the model's identity): a default per model and, optionally, one per API
 * key, which wins. A live policy ({@link PolicyVersions}): a change applies to the next request on
 * every instance.
 */
@Service
public class SystemPrompts {

    static final String MODEL = "model";
    static final String KEY = "key";
    static final int MAX_PROMPT_CHARS = 20_000;
    /** The model target that applies to every model without its own prompt, and to requests naming none. */
    static final String ANY_MODEL = "*";

    private record Snapshot(List<SystemPrompt> all, Map<String, SystemPrompt> byModel,
            Map<String, SystemPrompt> byKey) {
        static Snapshot of(List<SystemPrompt> all) {
            Map<String, SystemPrompt> byModel = new HashMap<>();
            Map<String, SystemPrompt> byKey = new HashMap<>();
            for (SystemPrompt p : all) {
                (MODEL.equals(p.scope()) ? byModel : byKey).put(p.target(), p);
            }
            return new Snapshot(List.copyOf(all), Map.copyOf(byModel), Map.copyOf(byKey));
        }
    }

    private final SystemPromptRepository repository;
    private final PolicyVersions versions;
    private final LiveSnapshot<Snapshot> snapshot;
    private final UpstreamPool pool;
    private final UpstreamModels models;
    private final ApiKeyService keys;
    private final Clock clock = Clock.systemUTC();

    SystemPrompts(SystemPromptRepository repository, PolicyVersions versions, UpstreamPool pool,
            UpstreamModels models, ApiKeyService keys) {
        this.repository = repository;
        this.versions = versions;
        this.pool = pool;
        this.models = models;
        this.keys = keys;
        this.snapshot = versions.register("system-prompts", () -> Snapshot.of(repository.findAll()));
    }

    /** The prompt for a request of {@code key} to {@code model}: the key's own, else the model's, else "*"'s. */
    public Optional<SystemPrompt> forRequest(ApiKey key, String model) {
        Snapshot current = snapshot.get();
        SystemPrompt own = current.byKey().get(Long.toString(key.id()));
        if (own != null) {
            return Optional.of(own);
        }
        SystemPrompt forModel = model == null ? null : current.byModel().get(model);
        return Optional.ofNullable(forModel != null ? forModel : current.byModel().get(ANY_MODEL));
    }

    @Schema(description = "A system prompt; {model}, {key_name} and {date} are filled in per request")
    record PromptChange(
            @Schema(maxLength = MAX_PROMPT_CHARS) String prompt,
            @Schema(allowableValues = {"prepend", "replace"}, description = "default prepend") String mode) {
    }

    List<SystemPrompt> all() {
        return snapshot.get().all();
    }

    SystemPrompt putForModel(String model, PromptChange change) {
        if (model == null || model.isBlank() || model.length() > 200) {
            throw ApiProblem.badRequest("A model id is 1 to 200 characters.");
        }
        if (!ANY_MODEL.equals(model) && !pool.pools().contains(model) && !models.listed(model)) {
            throw ApiProblem.badRequest("Unknown model '" + model + "': no upstream pool is named for it and no "
                    + "replica lists it in /v1/models.");
        }
        return put(MODEL, model, change);
    }

    SystemPrompt putForKey(long keyId, PromptChange change) {
        if (keys.find(keyId).isEmpty()) {
            throw ApiProblem.notFound("No API key with id " + keyId + ".");
        }
        return put(KEY, Long.toString(keyId), change);
    }

    /** Deletes the prompt; 404 (and no version bump) when there is none. */
    void delete(String scope, String target) {
        versions.change(() -> {
            if (!repository.delete(scope, target)) {
                throw ApiProblem.notFound("No system prompt for " + scope + " " + target + ".");
            }
            return null;
        });
    }

    private SystemPrompt put(String scope, String target, PromptChange change) {
        if (change == null || change.prompt() == null || change.prompt().isBlank()) {
            throw ApiProblem.badRequest("prompt must not be empty.");
        }
        if (change.prompt().length() > MAX_PROMPT_CHARS) {
            throw ApiProblem.badRequest("prompt is longer than " + MAX_PROMPT_CHARS + " characters.");
        }
        String mode = change.mode() == null ? SystemPrompt.PREPEND : change.mode();
        if (!SystemPrompt.PREPEND.equals(mode) && !SystemPrompt.REPLACE.equals(mode)) {
            throw ApiProblem.badRequest("mode must be 'prepend' or 'replace'.");
        }
        versions.change(() -> {
            repository.put(scope, target, change.prompt(), mode, clock.instant());
            return null;
        });
        return snapshot.get().all().stream().filter(p -> p.scope().equals(scope) && p.target().equals(target))
                .findFirst().orElseThrow();
    }
}

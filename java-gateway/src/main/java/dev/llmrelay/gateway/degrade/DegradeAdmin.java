package dev.llmrelay.gateway.degrade;

import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

import org.springframework.stereotype.Service;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.JsonNode;

import io.swagger.v3.oas.annotations.media.Schema;

import dev.llmrelay.gateway.system.ApiProblem;
import dev.llmrelay.gateway.degrade.DegradeRepository.Setting;
import dev.llmrelay.gateway.upstream.UpstreamPool;

/**
 * Checks and stores a change of the degradation policy: every member is checked before anything is
 * written, and the writes are one transaction, so a refused change leaves the policy as it was.
 */
@Service
class DegradeAdmin {

    static final int MAX_CAP = 1_000_000;
    private static final int MAX_MESSAGE = 1000;
    /** paused models (and pools) at most: any name passes while a default pool serves every model */
    static final int MAX_PAUSED = 1000;
    private static final Set<String> MEMBERS = Set.of("maxTokensCap", "pausedModels", "refuseNewConversations",
            "fallbacks");

    private final DegradeRepository repository;
    private final PolicySource policy;
    private final AdaptiveLimiter limiter;
    private final UpstreamPool upstreams;

    DegradeAdmin(DegradeRepository repository, PolicySource policy, AdaptiveLimiter limiter, UpstreamPool upstreams) {
        this.repository = repository;
        this.policy = policy;
        this.limiter = limiter;
        this.upstreams = upstreams;
    }

    /** The policy in force and each pool's limit, as the admin API and the health details show them. */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    record View(
            @Schema(types = {"integer", "null"}, format = "int32", description = "null: no cap") Integer maxTokensCap,
            Map<String, String> pausedModels,
            @Schema(types = {"string", "null"}, description = "null: new conversations are accepted")
            String refuseNewConversations,
            Map<String, String> fallbacks, Map<String, Map<String, Object>> pools) {
    }

    View view() {
        DegradePolicy current = policy.current();
        return new View(current.maxTokensCap(), new TreeMap<>(current.pausedModels()),
                current.newConversationsRefusal(), new TreeMap<>(current.fallbacks()), limiter.snapshot());
    }

    void apply(JsonNode patch) {
        if (patch == null || !patch.isObject()) {
            throw invalid("The body must be a JSON object (a merge patch of the degradation policy).");
        }
        ApiProblem.requireKnownMembers(patch, MEMBERS);
        Map<Setting, String> changes = new LinkedHashMap<>();
        if (patch.has("maxTokensCap")) {
            JsonNode cap = patch.get("maxTokensCap");
            if (cap.isNull()) {
                changes.put(new Setting(DegradeRepository.SWITCH, DegradeRepository.MAX_TOKENS_CAP), null);
            } else if (cap.isIntegralNumber() && cap.asLong() >= 1 && cap.asLong() <= MAX_CAP) {
                changes.put(new Setting(DegradeRepository.SWITCH, DegradeRepository.MAX_TOKENS_CAP), cap.asText());
            } else {
                throw invalid("maxTokensCap must be an integer from 1 to " + MAX_CAP + " (null lifts the cap), not "
                        + cap + ".");
            }
        }
        if (patch.has("refuseNewConversations")) {
            JsonNode refuse = patch.get("refuseNewConversations");
            Setting setting = new Setting(DegradeRepository.SWITCH, DegradeRepository.REFUSE_NEW_CONVERSATIONS);
            if (refuse.isNull() || (refuse.isBoolean() && !refuse.asBoolean())) {
                changes.put(setting, null);
            } else if (refuse.isBoolean()) {
                changes.put(setting, "New conversations are paused by the operator; existing ones go on. Try again later.");
            } else if (refuse.isTextual()) {
                changes.put(setting, message(refuse.asText(), "refuseNewConversations"));
            } else {
                throw invalid("refuseNewConversations must be true, false, null or the message to refuse with.");
            }
        }
        if (patch.has("pausedModels")) {
            forEachMember(patch.get("pausedModels"), "pausedModels", (model, value) -> {
                if (!upstreams.isPool(model) && !upstreams.serves(model)) {
                    throw invalid("pausedModels: no upstream pool serves the model '" + model + "'.");
                }
                Setting setting = new Setting(DegradeRepository.PAUSED, model);
                if (value.isNull()) {
                    changes.put(setting, null);
                } else if (value.isTextual()) {
                    changes.put(setting, message(value.asText(), "pausedModels." + model));
                } else if (value.isBoolean() && value.asBoolean()) {
                    changes.put(setting, "The model '" + model + "' is paused by the operator. Try again later.");
                } else {
                    throw invalid("pausedModels." + model + " must be the message to refuse with, true, or null "
                            + "(resume).");
                }
            });
        }
        if (patch.has("pausedModels")) {
            Set<String> paused = new HashSet<>(policy.current().pausedModels().keySet());
            changes.forEach((setting, value) -> {
                if (setting.kind().equals(DegradeRepository.PAUSED)) {
                    if (value == null) {
                        paused.remove(setting.subject());
                    } else {
                        paused.add(setting.subject());
                    }
                }
            });
            if (paused.size() > MAX_PAUSED) {
                throw invalid("pausedModels: at most " + MAX_PAUSED + " paused models or pools.");
            }
        }
        if (patch.has("fallbacks")) {
            forEachMember(patch.get("fallbacks"), "fallbacks", (pool, value) -> {
                if (!upstreams.isPool(pool)) {
                    throw invalid("fallbacks: '" + pool + "' is not an upstream pool; pools: " + poolNames() + ".");
                }
                Setting setting = new Setting(DegradeRepository.FALLBACK, pool);
                if (value.isNull()) {
                    changes.put(setting, null);
                    return;
                }
                if (!value.isTextual()) {
                    throw invalid("fallbacks." + pool + " must be a model name or null (remove the route).");
                }
                String fallback = value.asText();
                if (fallback.equals(pool)) {
                    throw invalid("fallbacks." + pool + " falls back to itself.");
                }
                if (UpstreamPool.DEFAULT_POOL.equals(fallback) || !upstreams.isPool(fallback)) {
                    throw invalid("fallbacks." + pool + ": the model '" + fallback + "' has no upstream pool of its "
                            + "own (GATEWAY_UPSTREAMS model=url); pools: " + poolNames() + ".");
                }
                changes.put(setting, fallback);
            });
        }
        policy.change(() -> repository.apply(changes));
    }

    private List<String> poolNames() {
        return upstreams.pools().stream().map(upstreams::poolName).toList();
    }

    private interface MemberCheck {
        void check(String name, JsonNode value);
    }

    private static void forEachMember(JsonNode object, String field, MemberCheck check) {
        if (!object.isObject()) {
            throw invalid(field + " must be an object.");
        }
        object.fields().forEachRemaining(e -> {
            if (e.getKey().isBlank() || e.getKey().length() > 200) {
                throw invalid(field + ": a name must be 1 to 200 characters.");
            }
            check.check(e.getKey(), e.getValue());
        });
    }

    private static String message(String text, String field) {
        if (text.isBlank() || text.length() > MAX_MESSAGE) {
            throw invalid(field + ": the message must be 1 to " + MAX_MESSAGE + " characters.");
        }
        return text.strip();
    }

    private static ApiProblem invalid(String detail) {
        return ApiProblem.badRequest(detail);
    }
}

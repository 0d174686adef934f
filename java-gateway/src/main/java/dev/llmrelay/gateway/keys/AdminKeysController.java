package dev.llmrelay.gateway.keys;

import java.lang.reflect.RecordComponent;
import java.net.URI;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.swagger.v3.oas.annotations.media.Content;
import io.swagger.v3.oas.annotations.media.Schema;
import io.swagger.v3.oas.annotations.responses.ApiResponse;
import io.swagger.v3.oas.annotations.security.SecurityRequirement;
import io.swagger.v3.oas.annotations.tags.Tag;

import org.springframework.http.HttpStatus;
import org.springframework.http.ProblemDetail;
import org.springframework.http.ResponseEntity;
import org.springframework.web.ErrorResponseException;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PatchMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

import dev.llmrelay.gateway.keys.ApiKeyService.KeyChanges;
import dev.llmrelay.gateway.system.ApiProblem;

/** Admin API for keys; errors are RFC 9457 problem details. */
@Tag(name = "Admin: API keys")
@SecurityRequirement(name = "adminToken")
@RestController
@RequestMapping("/admin/keys")
class AdminKeysController {

    /** The members a key change may have; any other is refused, as the degradation PATCH does. */
    private static final Set<String> MEMBERS = Arrays.stream(KeyChanges.class.getRecordComponents())
            .map(RecordComponent::getName).collect(Collectors.toUnmodifiableSet());

    private static final Set<String> BUDGET_MEMBERS = Set.of("tokens", "period");
    /** Larger budgets than this are refused: counters must never overflow when reservations add up. */
    private static final long MAX_BUDGET_TOKENS = 1_000_000_000_000_000L;

    private final ApiKeyService keys;
    private final ObjectMapper mapper;
    private final BudgetUsage budgets;

    AdminKeysController(ApiKeyService keys, ObjectMapper mapper, BudgetUsage budgets) {
        this.keys = keys;
        this.mapper = mapper;
        this.budgets = budgets;
    }

    /** A key as the admin API shows it; {@code key} (the plaintext) only in the answer to POST. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    record KeyView(long id, String name, String prefix, int requestsPerMinute, int tokensPerMinute,
            int maxConcurrentStreams, boolean enabled, boolean allowFallback, Instant createdAt,
            @Schema(description = "absent until the key is first used") Instant lastUsedAt,
            @Schema(description = "absent when the key has none") BudgetView budget,
            @Schema(description = "the plaintext key, only in the answer to POST") String key) {
    }

    /** {@code used}: tokens admitted this period (settled, plus what requests in flight still hold). */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    record BudgetView(long tokens, @Schema(allowableValues = {"day", "month", "total"}) String period, long used,
            long remaining, @Schema(types = {"string", "null"}, description = "null for total") Instant resetsAt) {
    }

    private KeyView view(ApiKey k, String plaintext) {
        BudgetView budget = null;
        if (k.budget() != null) {
            Instant now = Instant.now();
            long used = budgets.used(k, now);
            budget = new BudgetView(k.budget().tokens(), k.budget().period().wire(), used,
                    Math.max(0, k.budget().tokens() - used), k.budget().period().resetsAt(now));
        }
        return new KeyView(k.id(), k.name(), k.prefix(), k.requestsPerMinute(), k.tokensPerMinute(),
                k.maxConcurrentStreams(), k.enabled(), k.allowFallback(), k.createdAt(), k.lastUsedAt(), budget,
                plaintext);
    }

    @ApiResponse(responseCode = "201", description = "Created; the answer holds the plaintext key, shown only here",
            content = @Content(mediaType = "application/json", schema = @Schema(implementation = KeyView.class)))
    @io.swagger.v3.oas.annotations.parameters.RequestBody(content = @Content(mediaType = "application/json",
            schema = @Schema(implementation = KeyChanges.class)))
    @PostMapping
    ResponseEntity<KeyView> create(@RequestBody(required = false) JsonNode body) {
        KeyChanges changes = body == null || body.isNull() ? new KeyChanges(null, null, null, null, null)
                : changes(body);
        validate(changes);
        ApiKeyService.CreatedKey created = keys.create(changes);
        return ResponseEntity.created(URI.create("/admin/keys/" + created.key().id()))
                .body(view(created.key(), created.plaintext()));
    }

    @GetMapping
    List<KeyView> list() {
        return keys.list().stream().map(k -> view(k, null)).toList();
    }

    @GetMapping("/{id}")
    KeyView get(@PathVariable long id) {
        return keys.find(id).map(k -> view(k, null)).orElseThrow(() -> notFound(id));
    }

    @io.swagger.v3.oas.annotations.parameters.RequestBody(content = @Content(mediaType = "application/json",
            schema = @Schema(implementation = KeyChanges.class)))
    @PatchMapping("/{id}")
    KeyView update(@PathVariable long id, @RequestBody JsonNode body) {
        KeyChanges changes = changes(body);
        validate(changes);
        return keys.update(id, changes, body.has("budget")).map(k -> view(k, null)).orElseThrow(() -> notFound(id));
    }

    @ApiResponse(responseCode = "204", description = "Deleted")
    @DeleteMapping("/{id}")
    ResponseEntity<Void> delete(@PathVariable long id) {
        if (!keys.delete(id)) {
            throw notFound(id);
        }
        return ResponseEntity.noContent().build();
    }

    /**
     * The body as a key change, refusing (400) a body that is not an object and any member a key does not
     * have, before anything is created or changed: a misspelt limit must not leave the default in force.
     */
    private KeyChanges changes(JsonNode body) {
        if (!body.isObject()) {
            throw invalid("The body must be a JSON object of key changes.");
        }
        ApiProblem.requireKnownMembers(body, MEMBERS);
        checkBudget(body.get("budget"));
        try {
            return mapper.treeToValue(body, KeyChanges.class);
        } catch (JsonProcessingException | IllegalArgumentException e) {
            throw invalid("Request body is not valid JSON of the expected shape");
        }
    }

    /** A budget member: null (none), or {"tokens": a whole number >= 1, "period": day | month | total}. */
    private static void checkBudget(JsonNode budget) {
        if (budget == null || budget.isNull()) {
            return;
        }
        if (!budget.isObject()) {
            throw invalid("budget must be an object {\"tokens\", \"period\"}, or null to remove it.");
        }
        ApiProblem.requireKnownMembers(budget, BUDGET_MEMBERS);
        JsonNode tokens = budget.get("tokens");
        if (tokens == null || !tokens.isIntegralNumber() || !tokens.canConvertToLong() || tokens.asLong() < 1
                || tokens.asLong() > MAX_BUDGET_TOKENS) {
            throw invalid("budget.tokens must be a whole number from 1 to " + MAX_BUDGET_TOKENS + ".");
        }
        JsonNode period = budget.get("period");
        if (period == null || !period.isTextual() || Budget.Period.ofWire(period.asText()) == null) {
            throw invalid("budget.period must be one of day, month, total (UTC calendar periods).");
        }
    }

    private static ErrorResponseException invalid(String detail) {
        ProblemDetail body = ProblemDetail.forStatusAndDetail(HttpStatus.BAD_REQUEST, detail);
        body.setTitle("Bad request");
        return new ErrorResponseException(HttpStatus.BAD_REQUEST, body, null);
    }

    private static void validate(KeyChanges c) {
        if (!positive(c.requestsPerMinute()) || !positive(c.tokensPerMinute()) || !positive(c.maxConcurrentStreams())) {
            ProblemDetail body = ProblemDetail.forStatusAndDetail(HttpStatus.BAD_REQUEST,
                    "requestsPerMinute, tokensPerMinute and maxConcurrentStreams must be positive integers");
            body.setTitle("Invalid limits");
            throw new ErrorResponseException(HttpStatus.BAD_REQUEST, body, null);
        }
        if (c.name() != null && c.name().length() > 200) {
            ProblemDetail body = ProblemDetail.forStatusAndDetail(HttpStatus.BAD_REQUEST, "name is longer than 200");
            body.setTitle("Invalid name");
            throw new ErrorResponseException(HttpStatus.BAD_REQUEST, body, null);
        }
    }

    private static boolean positive(Integer value) {
        return value == null || value > 0;
    }

    private static ErrorResponseException notFound(long id) {
        ProblemDetail body = ProblemDetail.forStatusAndDetail(HttpStatus.NOT_FOUND, "No API key with id " + id);
        body.setTitle("Key not found");
        return new ErrorResponseException(HttpStatus.NOT_FOUND, body, null);
    }
}

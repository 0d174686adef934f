package dev.llmrelay.gateway.chat;

import org.springframework.stereotype.Component;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.ratelimit.TokenBudgets;
import dev.llmrelay.gateway.usage.EndReason;

/**
 * The key's token budget ({@link TokenBudgets}): holds the most the request can use and sets its
 * {@code max_tokens} to the completion that hold allows (what is left of the budget may be less than it asked),
 * so the answer cannot outgrow it; 429 {@code insufficient_quota} when not even one token a choice is left.
 * The prompt is held at an upper bound, not the estimate: a byte-level tokenizer never makes more tokens than
 * the UTF-8 bytes of the body the upstream gets, and the margin covers the chat template's own text.
 */
@Component
class BudgetStage implements RequestStage {

    /** Template text no request byte stands for: role markers, a default system prompt (Qwen's is ~20 tokens). */
    static final int TEMPLATE_MARGIN = 64;
    /** A tools-aware template adds its instructions around the tools' JSON (Qwen2.5's: about 100 tokens). */
    static final int TOOLS_MARGIN = 256;

    private final TokenBudgets budgets;
    private final RequestRewriter rewriter;
    private final ObjectMapper mapper;

    BudgetStage(TokenBudgets budgets, RequestRewriter rewriter, ObjectMapper mapper) {
        this.budgets = budgets;
        this.rewriter = rewriter;
        this.mapper = mapper;
    }

    @Override
    public void apply(GenerationRequest request) {
        if (request.key.budget() == null) {
            return;
        }
        long completion = (request.reservation - request.promptEstimate) / request.choices;
        request.budget = budgets.reserve(request.key, promptBound(request), request.choices, completion);
        long cap = request.budget.completionPerChoice();
        String field = request.endpoint.maxTokensField(request.body);
        request.body.put(field == null ? "max_tokens" : field, cap);
        request.reservation = request.promptEstimate + request.choices * cap;
    }

    private long promptBound(GenerationRequest request) {
        try {
            byte[] upstream = mapper.writeValueAsBytes(rewriter.upstreamRequest(request.body, request.key, request.model));
            JsonNode tools = request.body.get("tools");
            return upstream.length + TEMPLATE_MARGIN + (tools != null && !tools.isEmpty() ? TOOLS_MARGIN : 0);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public EndReason refusal() {
        return EndReason.budget_exhausted;
    }
}

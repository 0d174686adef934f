package dev.llmrelay.gateway.safety;

import java.time.Clock;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.stereotype.Service;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.policy.LiveSnapshot;
import dev.llmrelay.gateway.policy.PolicyVersions;
import dev.llmrelay.gateway.safety.ContentFilterRepository.HitRow;
import dev.llmrelay.gateway.tracing.Tracing;
import io.opentelemetry.api.trace.Span;
import dev.llmrelay.gateway.system.OpenAiException;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;

/**
 * Content safety on the chat path, for /v1 and the browser API alike: a prompt that matches a list is
 * refused (400 {@code content_filter}) before any model work; the answer goes through a
 * {@link StreamFilter} per choice. The lists are a live policy ({@link PolicyVersions}). Every match is
 * counted ({@code gateway.content.filter.hits} by list, action and side) and each request's matches are
 * recorded per list (not the text).
 */
@Service
public class ContentFilter {

    private static final Logger log = LoggerFactory.getLogger(ContentFilter.class);

    private volatile LiveSnapshot<FilterRules> rules;
    private final ContentFilterRepository repository;
    private final MeterRegistry meters;
    private final Clock clock = Clock.systemUTC();

    ContentFilter(PolicyVersions versions, ContentFilterRepository repository, MeterRegistry meters) {
        this.repository = repository;
        this.meters = meters;
        this.rules = versions.register("content-filter", this::load);
    }

    /** The lists as stored; the automaton is rebuilt only when they changed (other policies bump the version too). */
    private FilterRules load() {
        List<FilterRules.ListRules> lists = repository.loadAll();
        FilterRules current = rules == null ? null : rules.get();
        return current != null && current.lists().equals(lists) ? current : new FilterRules(lists);
    }

    FilterRules rules() {
        return rules.get();
    }

    /**
     * @throws OpenAiException 400 {@code content_filter} when a message of the request matches a list that
     *                         checks prompts
     */
    public void checkPrompt(ObjectNode request, Long keyId, String requestId) {
        FilterRules current = rules.get();
        if (current.isEmpty()) {
            return;
        }
        Map<String, Integer> matches = new TreeMap<>();
        Map<String, FilterRules.ListRules> lists = new LinkedHashMap<>();
        List<String> prompt = new ArrayList<>();
        for (JsonNode message : request.path("messages")) {
            prompt.addAll(texts(message.path("content")));
        }
        prompt.addAll(texts(request.path("prompt"))); // a text completion's prompt (token ids carry no text)
        for (String text : prompt) {
            for (FilterRules.Hit hit : current.scan(FilterText.of(text).text)) {
                if (hit.list().checkPrompt()) {
                    matches.merge(hit.list().name(), 1, Integer::sum);
                    lists.put(hit.list().name(), hit.list());
                }
            }
        }
        if (matches.isEmpty()) {
            return;
        }
        List<HitRow> rows = new ArrayList<>();
        matches.forEach((name, count) -> {
            FilterRules.ListRules list = lists.get(name);
            counter(list, "prompt").increment(count);
            Tracing.filterHit(Span.current(), name, list.action().name(), "prompt", count); // the admission span
            rows.add(new HitRow(requestId, keyId, name, list.action().name(), "prompt", count, clock.instant()));
        });
        record(rows);
        throw new OpenAiException(400, "invalid_request_error", "content_filter",
                request.has("messages") ? "messages" : "prompt",
                "The request was refused by the content filter.", Map.of());
    }

    /** The text parts of a message's content or a prompt: a string, or the strings or {@code text} of its parts. */
    private static List<String> texts(JsonNode content) {
        if (content.isTextual()) {
            return List.of(content.asText());
        }
        List<String> texts = new ArrayList<>();
        for (JsonNode part : content) {
            if (part.isTextual()) {
                texts.add(part.asText());
            } else if (part.path("text").isTextual()) {
                texts.add(part.path("text").asText());
            }
        }
        return texts;
    }

    /** The output filter of one request. */
    public Output forStream(Long keyId, String requestId) {
        return new Output(keyId, requestId);
    }

    /** One request's answer: a {@link StreamFilter} per choice, and its matches to record at the end. */
    public final class Output {
        private final Long keyId;
        private final String requestId;
        private final Map<Integer, StreamFilter> choices = new TreeMap<>();
        private final Map<String, FilterRules.ListRules> lists = new LinkedHashMap<>();
        private boolean recorded;

        private Output(Long keyId, String requestId) {
            this.keyId = keyId;
            this.requestId = requestId;
        }

        /** Whether any list is in force now (then per-token data such as logprobs must not pass). */
        public boolean active() {
            return !rules.get().isEmpty();
        }

        public synchronized StreamFilter choice(int index) {
            return choices.computeIfAbsent(index, i -> new StreamFilter(rules::get, list -> {
                lists.put(list.name(), list);
                counter(list, "output").increment();
            }));
        }

        /** Every choice's held text, in index order (the stream ended). */
        public synchronized Map<Integer, String> flush() {
            Map<Integer, String> tails = new TreeMap<>();
            choices.forEach((index, filter) -> tails.put(index, filter.flush()));
            return tails;
        }

        /** Writes one row per list that matched (once; a no-op without matches) and returns them. */
        public synchronized List<HitRow> record() {
            if (recorded || lists.isEmpty()) {
                return List.of();
            }
            recorded = true;
            Map<String, Integer> total = new TreeMap<>();
            for (StreamFilter filter : choices.values()) {
                filter.hitsByList().forEach((name, n) -> total.merge(name, n, Integer::sum));
            }
            List<HitRow> rows = new ArrayList<>();
            total.forEach((name, n) -> rows.add(new HitRow(requestId, keyId, name,
                    lists.get(name).action().name(), "output", n, clock.instant())));
            ContentFilter.this.record(rows);
            return rows;
        }
    }

    private Counter counter(FilterRules.ListRules list, String side) {
        return Counter.builder("gateway.content.filter.hits").description("content-filter matches")
                .tag("list", list.name()).tag("action", list.action().name()).tag("side", side).register(meters);
    }

    private void record(List<HitRow> rows) {
        try {
            repository.insertHits(rows);
        } catch (RuntimeException e) {
            // the metric still counted it; a lost row must not break the request
            log.warn("could not record content-filter hits: {}", e.toString());
        }
    }
}

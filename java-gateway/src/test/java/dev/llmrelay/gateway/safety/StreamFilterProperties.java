package dev.llmrelay.gateway.safety;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

import dev.llmrelay.gateway.safety.FilterRules.Action;
import dev.llmrelay.gateway.safety.FilterRules.ListRules;

/**
 * The stream filter on its own: for any text with list words (mixed case, full width, Chinese) cut into
 * any chunks, nothing of a word gets out, and the output is exactly the whole-text answer (masked:
 * the input with each match's code points as '*'; blocked: the text before the first match).
 */
class StreamFilterProperties {

    private static FilterRules rules(Action action) {
        return new FilterRules(List.of(new ListRules("test", action, true, FilterCorpus.WORDS, List.of())));
    }

    private static final FilterRules MASK = rules(Action.mask);
    private static final FilterRules BLOCK = rules(Action.block);

    private static String run(FilterRules rules, List<String> chunks, AtomicInteger hits, boolean[] blocked) {
        StreamFilter filter = new StreamFilter(() -> rules, list -> hits.incrementAndGet());
        StringBuilder out = new StringBuilder();
        for (String chunk : chunks) {
            StreamFilter.Step step = filter.feed(chunk);
            out.append(step.released());
            if (step.blocked()) {
                blocked[0] = true;
                return out.toString();
            }
            // nothing released may already contain a word: checked at every step, not only at the end
            assertThat(FilterCorpus.leaks(out.toString())).isFalse();
        }
        out.append(filter.flush());
        return out.toString();
    }

    @Property(tries = 10_000)
    void maskedOutputIsTheWholeTextMaskedWhateverTheChunks(@ForAll long seed, @ForAll @IntRange(min = 1, max = 40) int parts) {
        Random random = new Random(seed);
        String text = FilterCorpus.text(random, parts);
        List<String> chunks = FilterCorpus.chunks(random, text);
        boolean[] blocked = {false};
        String out = run(MASK, chunks, new AtomicInteger(), blocked);
        assertThat(blocked[0]).isFalse();
        assertThat(out).isEqualTo(FilterCorpus.masked(text));
        assertThat(FilterCorpus.leaks(out)).isFalse();
    }

    @Property(tries = 10_000)
    void blockedOutputIsTheTextBeforeTheFirstMatchWhateverTheChunks(@ForAll long seed,
            @ForAll @IntRange(min = 1, max = 40) int parts) {
        Random random = new Random(seed);
        String text = FilterCorpus.text(random, parts);
        List<String> chunks = FilterCorpus.chunks(random, text);
        boolean[] blocked = {false};
        String out = run(BLOCK, chunks, new AtomicInteger(), blocked);
        assertThat(blocked[0]).isEqualTo(FilterCorpus.hasMatch(text));
        assertThat(out).isEqualTo(FilterCorpus.beforeFirstMatch(text));
        assertThat(FilterCorpus.leaks(out)).isFalse();
    }
}

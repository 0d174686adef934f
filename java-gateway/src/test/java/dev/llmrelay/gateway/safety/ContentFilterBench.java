package dev.llmrelay.gateway.safety;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import dev.llmrelay.gateway.safety.FilterRules.Action;
import dev.llmrelay.gateway.safety.FilterRules.ListRules;

/**
 * Filter cost per chunk (bench/content_filter.sh runs this from the test classes): {@code streams}
 * threads each push {@code chunks} chunks of 1-8 chars (a token's worth) through their own
 * {@link StreamFilter}, with a list of {@code words} words (ASCII and Chinese, 2-12 chars, mask), and
 * the same with no list (the baseline: what a stream costs without the filter). Prints the time per
 * {@code feed} call, p50/p99/max, and the automaton's build time (what a reload costs).
 * Args: words, streams, chunks per stream.
 */
public final class ContentFilterBench {

    private static final String LETTERS = "abcdefghijklmnopqrstuvwxyz";
    private static final String HAN = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行";

    public static void main(String[] args) throws Exception {
        int wordCount = Integer.parseInt(args.length > 0 ? args[0] : "50000");
        int streams = Integer.parseInt(args.length > 1 ? args[1] : "200");
        int chunks = Integer.parseInt(args.length > 2 ? args[2] : "500");
        Random random = new Random(42);
        List<String> words = new ArrayList<>();
        while (words.size() < wordCount) {
            words.add(random.nextInt(4) == 0 ? word(random, HAN, 2, 4) : word(random, LETTERS, 4, 12));
        }
        long buildStart = System.nanoTime();
        FilterRules rules = new FilterRules(List.of(new ListRules("bench", Action.mask, true, words, List.of())));
        double buildMs = (System.nanoTime() - buildStart) / 1e6;
        System.out.printf("automaton: %d words, longest %d chars, built in %.0f ms%n", wordCount, rules.longest(),
                buildMs);
        System.out.println("| rules | streams | chunks | per chunk p50 us | p99 us | max us |");
        System.out.println("|---|---|---|---|---|---|");
        for (int round = 0; round < 2; round++) { // the first round warms the JIT
            for (FilterRules current : List.of(FilterRules.EMPTY, rules)) {
                long[] nanos = run(current, words, streams, chunks, round);
                Arrays.sort(nanos);
                if (round == 1) {
                    System.out.printf("| %s | %d | %d | %.1f | %.1f | %.1f |%n",
                            current.isEmpty() ? "none (baseline)" : wordCount + " words", streams, nanos.length,
                            nanos[nanos.length / 2] / 1e3, nanos[(int) (nanos.length * 0.99)] / 1e3,
                            nanos[nanos.length - 1] / 1e3);
                }
            }
        }
    }

    private static long[] run(FilterRules rules, List<String> words, int streams, int chunks, int round)
            throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(streams);
        CountDownLatch go = new CountDownLatch(1);
        List<Future<long[]>> results = new ArrayList<>();
        for (int s = 0; s < streams; s++) {
            Random random = new Random(round * 1000L + s);
            List<String> pieces = new ArrayList<>();
            for (int c = 0; c < chunks; c++) {
                // about one chunk in 20 carries a list word, cut somewhere
                String piece = random.nextInt(20) == 0 ? words.get(random.nextInt(words.size()))
                        : word(random, random.nextBoolean() ? LETTERS + "    " : HAN, 1, 8);
                pieces.add(piece);
            }
            results.add(pool.submit(() -> {
                StreamFilter filter = new StreamFilter(() -> rules, list -> { });
                long[] nanos = new long[pieces.size()];
                go.await();
                for (int c = 0; c < pieces.size(); c++) {
                    long start = System.nanoTime();
                    filter.feed(pieces.get(c));
                    nanos[c] = System.nanoTime() - start;
                }
                filter.flush();
                return nanos;
            }));
        }
        go.countDown();
        long[] all = new long[streams * chunks];
        int at = 0;
        for (Future<long[]> result : results) {
            long[] nanos = result.get();
            System.arraycopy(nanos, 0, all, at, nanos.length);
            at += nanos.length;
        }
        pool.shutdown();
        return all;
    }

    private static String word(Random random, String alphabet, int min, int max) {
        int length = min + random.nextInt(max - min + 1);
        StringBuilder word = new StringBuilder(length);
        for (int i = 0; i < length; i++) {
            word.append(alphabet.charAt(random.nextInt(alphabet.length())));
        }
        return word.toString();
    }
}

package dev.llmrelay.gateway.safety;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.ahocorasick.trie.Emit;
import org.ahocorasick.trie.Trie;

/**
 * One immutable snapshot of every content-filter list: all their words in one Aho-Corasick automaton
 * (matched on {@link FilterText} folding) plus their bounded regular expressions. Replaced as a whole
 * when an admin changes a list.
 */
final class FilterRules {

    static final FilterRules EMPTY = new FilterRules(List.of());

    enum Action { mask, block }

    /** A list as loaded: its words (as entered) and patterns. */
    record ListRules(String name, Action action, boolean checkPrompt, List<String> words,
            List<PatternRule> patterns) {
    }

    record PatternRule(String regex, int maxLength) {
    }

    /** One match: {@code [start, end)} in the normalized text, and the list it belongs to. */
    record Hit(int start, int end, ListRules list) {
    }

    private record CompiledPattern(Pattern pattern, int maxLength, ListRules list) {
    }

    private final List<ListRules> lists;
    private final Trie trie;
    private final Map<String, List<ListRules>> listsOfWord = new HashMap<>();
    private final List<CompiledPattern> patterns = new ArrayList<>();
    private final int longest;

    FilterRules(List<ListRules> lists) {
        this.lists = List.copyOf(lists);
        int max = 0;
        for (ListRules list : lists) {
            for (String word : list.words()) {
                String folded = FilterText.normalize(word);
                if (folded.isEmpty()) {
                    continue;
                }
                List<ListRules> owners = listsOfWord.computeIfAbsent(folded, w -> new ArrayList<>(1));
                if (!owners.contains(list)) {
                    owners.add(list);
                }
                max = Math.max(max, folded.length());
            }
            for (PatternRule rule : list.patterns()) {
                patterns.add(new CompiledPattern(compile(rule.regex()), rule.maxLength(), list));
                max = Math.max(max, rule.maxLength());
            }
        }
        this.trie = listsOfWord.isEmpty() ? null : Trie.builder().addKeywords(listsOfWord.keySet()).build();
        this.longest = max;
    }

    /** How patterns are compiled, here and when the admin API checks them. */
    static Pattern compile(String regex) {
        return Pattern.compile(regex, Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE);
    }

    boolean isEmpty() {
        return longest == 0;
    }

    List<ListRules> lists() {
        return lists;
    }

    /** The longest match any rule can make, in normalized chars: how much of a stream must be held back + 1. */
    int longest() {
        return longest;
    }

    /** Every match in {@code text} (already normalized), overlapping ones included. */
    List<Hit> scan(String text) {
        List<Hit> hits = new ArrayList<>();
        if (trie != null) {
            for (Emit emit : trie.parseText(text)) {
                for (ListRules list : listsOfWord.get(emit.getKeyword())) {
                    hits.add(new Hit(emit.getStart(), emit.getEnd() + 1, list));
                }
            }
        }
        for (CompiledPattern pattern : patterns) {
            Matcher matcher = pattern.pattern().matcher(text);
            while (matcher.find()) {
                // a match longer than the declared maxLength still counts; only its split across chunks may be missed
                if (matcher.end() > matcher.start()) {
                    hits.add(new Hit(matcher.start(), matcher.end(), pattern.list()));
                }
            }
        }
        return hits;
    }
}

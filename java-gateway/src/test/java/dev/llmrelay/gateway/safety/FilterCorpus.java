package dev.llmrelay.gateway.safety;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Texts that contain list words written every way a model (or a user) might: mixed case, full-width
 * letters, Chinese; the reference answer is computed on the whole text at once, as if there were no
 * chunks. Shared by the property test of the filter and the HTTP tests.
 */
public final class FilterCorpus {

    public static final List<String> WORDS = List.of("secret", "Password", "机密", "敏感词汇", "ssh-key", "zz");
    private static final String[] FILLER = {"a", "b", " ", "s", "e", "c", "的", "是", "机", "密", "ss", "z",
            "。", "Hello ", "ｈｉ", "\n", "pass", "key", "sh", "-", "词", "✓", "é"};

    private FilterCorpus() {
    }

    /** A text of filler and list words in random case and width. */
    public static String text(Random random, int parts) {
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < parts; i++) {
            if (random.nextInt(3) == 0) {
                text.append(variant(random, WORDS.get(random.nextInt(WORDS.size()))));
            } else {
                text.append(FILLER[random.nextInt(FILLER.length)]);
            }
        }
        return text.toString();
    }

    /** The word with each ASCII letter in random case, some full-width. */
    static String variant(Random random, String word) {
        StringBuilder out = new StringBuilder();
        for (char c : word.toCharArray()) {
            if (c < 0x80 && Character.isLetter(c)) {
                char cased = random.nextBoolean() ? Character.toUpperCase(c) : Character.toLowerCase(c);
                out.append(random.nextInt(3) == 0 ? (char) (cased - 'A' + 'Ａ') : cased);
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    /** {@code text} cut at random places into pieces (some empty). */
    public static List<String> chunks(Random random, String text) {
        List<String> chunks = new ArrayList<>();
        int i = 0;
        while (i < text.length()) {
            int size = random.nextInt(Math.min(8, text.length() - i) + 1);
            chunks.add(text.substring(i, i + size));
            i += size;
        }
        return chunks;
    }

    /** Every match of the words, on the whole text: normalized [start, end) turned into source ranges. */
    private static boolean[] matched(String text, List<String> words) {
        FilterText normalized = FilterText.of(text);
        boolean[] masked = new boolean[text.length()];
        for (String word : words) {
            String folded = FilterText.normalize(word);
            for (int at = normalized.text.indexOf(folded); at >= 0; at = normalized.text.indexOf(folded, at + 1)) {
                int start = normalized.origin[at];
                int last = normalized.origin[at + folded.length() - 1];
                int end = last + Character.charCount(text.codePointAt(last));
                for (int k = start; k < end; k++) {
                    masked[k] = true;
                }
            }
        }
        return masked;
    }

    /** The text with every match masked, one {@code *} per code point. */
    public static String masked(String text) {
        boolean[] masked = matched(text, WORDS);
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < text.length();) {
            int cp = text.codePointAt(i);
            out.append(masked[i] ? "*" : new String(Character.toChars(cp)));
            i += Character.charCount(cp);
        }
        return out.toString();
    }

    /** The text before the first match (all of it when none). */
    public static String beforeFirstMatch(String text) {
        boolean[] masked = matched(text, WORDS);
        for (int i = 0; i < masked.length; i++) {
            if (masked[i]) {
                return text.substring(0, i);
            }
        }
        return text;
    }

    /** Whether any word appears in {@code text} after folding: a leak when {@code text} was filtered. */
    public static boolean leaks(String text) {
        String folded = FilterText.normalize(text);
        return WORDS.stream().anyMatch(w -> folded.contains(FilterText.normalize(w)));
    }

    /** Whether the text contains any match at all. */
    public static boolean hasMatch(String text) {
        return leaks(text);
    }
}

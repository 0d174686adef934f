package dev.llmrelay.gateway.safety;

import java.text.Normalizer;
import java.util.Arrays;
import java.util.Locale;

/**
 * The text the content filter matches on: each code point on its own through NFKC (full-width
 * {@code Ａ} becomes {@code A}, {@code ㎏} becomes {@code kg}) and case folding (upper then lower
 * case, so {@code ß} and {@code SS} meet). Per code point, not per string, so the normalized form of a
 * text is the concatenation of its parts' forms: a stream cut anywhere normalizes to the same text,
 * and every normalized char maps back to the code point it came from ({@link #origin}).
 */
final class FilterText {

    /** The normalized text. */
    final String text;
    /** For each char of {@link #text}: the index in the source of the code point it came from. */
    final int[] origin;

    private FilterText(String text, int[] origin) {
        this.text = text;
        this.origin = origin;
    }

    static FilterText of(CharSequence source) {
        int length = source.length();
        StringBuilder out = new StringBuilder(length + 8);
        int[] origin = new int[length + 8];
        int n = 0;
        for (int i = 0; i < length;) {
            int cp = Character.codePointAt(source, i);
            int width = Character.charCount(cp);
            if (cp < 0x80) {
                // ASCII needs no normalizer: only A-Z change
                out.append((char) (cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
                origin = grow(origin, n + 1);
                origin[n++] = i;
            } else {
                String folded = fold(cp);
                origin = grow(origin, n + folded.length());
                for (int k = 0; k < folded.length(); k++) {
                    origin[n++] = i;
                }
                out.append(folded);
            }
            i += width;
        }
        return new FilterText(out.toString(), origin);
    }

    /** A word or pattern as the filter stores it: the same folding as the text it is matched on. */
    static String normalize(String word) {
        return of(word).text;
    }

    private static String fold(int cp) {
        String nfkc = Normalizer.normalize(new String(Character.toChars(cp)), Normalizer.Form.NFKC);
        // a code point NFKC removes entirely still counts as itself, so every code point maps to a char
        String source = nfkc.isEmpty() ? new String(Character.toChars(cp)) : nfkc;
        return source.toUpperCase(Locale.ROOT).toLowerCase(Locale.ROOT);
    }

    private static int[] grow(int[] array, int needed) {
        return needed <= array.length ? array : Arrays.copyOf(array, Math.max(needed, array.length * 2));
    }
}

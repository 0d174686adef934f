package dev.llmrelay.gateway.system;

/**
 * Client text as the database stores it. A lone surrogate is legal in JSON and Java strings, but
 * PostgreSQL's UTF-8 text cannot hold one (its JDBC driver silently writes {@code ?}). So each lone
 * surrogate is stored as one code point of private-use plane 15 (U+F0000 + offset), and a code point
 * of that range or U+FFFF already in the text is escaped with a U+FFFF before it; {@link #decode}
 * undoes both. Ordinary text, surrogate pairs included, is stored unchanged, and the mapping never
 * adds code points to it (PostgreSQL's VARCHAR limits count code points).
 */
public final class StoredText {

    private static final int ESCAPE = 0xFFFF;
    private static final int FIRST = 0xF0000;
    private static final int LAST = FIRST + (Character.MAX_SURROGATE - Character.MIN_SURROGATE);

    private StoredText() {
    }

    public static String encode(String text) {
        if (text == null || !mapped(text)) {
            return text;
        }
        StringBuilder out = new StringBuilder(text.length() + 8);
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            if (cp >= Character.MIN_SURROGATE && cp <= Character.MAX_SURROGATE) { // codePointAt: a lone one
                out.appendCodePoint(FIRST + (cp - Character.MIN_SURROGATE));
            } else {
                if (cp == ESCAPE || (cp >= FIRST && cp <= LAST)) {
                    out.appendCodePoint(ESCAPE);
                }
                out.appendCodePoint(cp);
            }
            i += Character.charCount(cp);
        }
        return out.toString();
    }

    public static String decode(String stored) {
        if (stored == null || !mapped(stored)) {
            return stored;
        }
        StringBuilder out = new StringBuilder(stored.length());
        for (int i = 0; i < stored.length(); ) {
            int cp = stored.codePointAt(i);
            i += Character.charCount(cp);
            if (cp == ESCAPE && i < stored.length()) {
                int escaped = stored.codePointAt(i);
                i += Character.charCount(escaped);
                out.appendCodePoint(escaped);
            } else if (cp >= FIRST && cp <= LAST) {
                out.append((char) (Character.MIN_SURROGATE + (cp - FIRST)));
            } else {
                out.appendCodePoint(cp);
            }
        }
        return out.toString();
    }

    /** Whether the text has a code point that either direction changes (most text has none). */
    private static boolean mapped(String text) {
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            if (cp == ESCAPE || (cp >= Character.MIN_SURROGATE && cp <= Character.MAX_SURROGATE)
                    || (cp >= FIRST && cp <= LAST)) {
                return true;
            }
            i += Character.charCount(cp);
        }
        return false;
    }
}

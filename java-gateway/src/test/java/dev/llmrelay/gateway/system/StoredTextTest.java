package dev.llmrelay.gateway.system;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The storage form of client text: reversible, unchanged for ordinary text, never longer in code points. */
class StoredTextTest {

    @Test
    void ordinaryTextIsStoredUnchanged() {
        for (String text : new String[] {"", "plain", "中文 😀 e\u0301", "\uFFFE"}) {
            assertThat(StoredText.encode(text)).isSameAs(text);
        }
        assertThat(StoredText.encode(null)).isNull();
        assertThat(StoredText.decode(null)).isNull();
    }

    @Test
    void loneSurrogatesAndTheEscapedRangeRoundTripAsValidUnicode() {
        String plane15 = new String(Character.toChars(0xF0005));
        for (String text : new String[] {"\ud800", "a\udfffb", "\udc00\ud800", "x\uFFFFy", plane15,
                "\uFFFF\ud800" + plane15 + "😀\uFFFF"}) {
            String stored = StoredText.encode(text);
            assertThat(isWellFormed(stored)).as(text).isTrue();
            assertThat(StoredText.decode(stored)).isEqualTo(text);
        }
        // one lone surrogate is one stored code point: VARCHAR limits (code points) still hold
        assertThat(StoredText.encode("a\ud800b").codePointCount(0, StoredText.encode("a\ud800b").length()))
                .isEqualTo(3);
    }

    private static boolean isWellFormed(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                return false;
            }
        }
        return true;
    }
}

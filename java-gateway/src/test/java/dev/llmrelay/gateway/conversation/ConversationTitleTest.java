package dev.llmrelay.gateway.conversation;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/**
 * A conversation's title: its first message on one line, at most 60 code points, and a cut between words
 * where there is a space in its second half (issue 18: "What is the capital of Franc…" was cut mid-word).
 * web/js/conversation.js titleFor writes the same title before the server's arrives.
 */
class ConversationTitleTest {

    @Test
    void aShortMessageIsItsOwnTitleOnOneLine() {
        assertThat(BrowserChatService.title("  What is\n\tthe   capital?  ")).isEqualTo("What is the capital?");
        assertThat(BrowserChatService.title("x".repeat(60))).isEqualTo("x".repeat(60));
    }

    @Test
    void aLongMessageIsCutBetweenWords() {
        assertThat(BrowserChatService.title(
                "What is the capital of France and why did it become the capital in the first place"))
                .isEqualTo("What is the capital of France and why did it become the…");
        // the cut falls on a space: nothing is dropped but the space
        assertThat(BrowserChatService.title("a".repeat(30) + " " + "b".repeat(28) + " tail"))
                .isEqualTo("a".repeat(30) + " " + "b".repeat(28) + "…");
    }

    @Test
    void withoutASpaceInItsSecondHalfTheCutIsAtTheCodePoint() {
        assertThat(BrowserChatService.title("x".repeat(61))).isEqualTo("x".repeat(59) + "…");
        assertThat(BrowserChatService.title("请用中文介绍一下北京的历史文化名胜古迹以及现代城市发展的情况和未来规划，还有交通美食购物娱乐住宿等方面的建议与注意事项谢谢你"))
                .hasSize(60).endsWith("…");
        assertThat(BrowserChatService.title("ab " + "c".repeat(70))).isEqualTo("ab " + "c".repeat(56) + "…");
        assertThat(BrowserChatService.title("a".repeat(58) + "😀😀😀")).isEqualTo("a".repeat(58) + "😀…");
    }
}

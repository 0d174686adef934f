package dev.llmrelay.gateway.safety;

import java.util.BitSet;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * The content filter of one stream (one choice): text goes in chunk by chunk, filtered text comes out.
 * It keeps the text not yet released, re-scans it with every chunk (matches are found on the whole
 * concatenated stream, however it was cut), and releases all but the last {@code longest - 1}
 * normalized chars: a match that a later chunk completes starts inside what is still held. Masked
 * chars become {@code *} (one per code point); a match of a {@code block} list ends the stream with the
 * text before it. The rules are read on every chunk, so a change reaches running streams.
 * Not thread-safe: one stream's chunks arrive one at a time.
 */
public final class StreamFilter {

    /** What one step lets out: {@code released} text, and {@code blockedBy} the list that ended the stream. */
    public record Step(String released, String blockedBy) {
        public boolean blocked() {
            return blockedBy != null;
        }
    }

    /** Told of each new match (once, however often the held window is re-scanned). */
    interface HitListener {
        void hit(FilterRules.ListRules list);
    }

    private final Supplier<FilterRules> rules;
    private final HitListener listener;
    private final StringBuilder held = new StringBuilder();
    private BitSet masked = new BitSet();
    /** Chars released so far: the stream offset of {@code held}'s first char. */
    private long releasedChars;
    /** Matches already counted, by stream offsets and list; pruned as text is released. */
    private Set<HitKey> counted = new HashSet<>();
    private final Map<String, Integer> hitsByList = new LinkedHashMap<>();
    private boolean ended;

    private record HitKey(long start, long end, String list) {
    }

    StreamFilter(Supplier<FilterRules> rules, HitListener listener) {
        this.rules = rules;
        this.listener = listener;
    }

    /** Takes the next piece of the stream's text. */
    public Step feed(String text) {
        if (ended) {
            return new Step("", null);
        }
        FilterRules current = rules.get();
        if (current.isEmpty() && held.isEmpty()) {
            releasedChars += text.length();
            return new Step(text, null); // nothing to match, nothing held: the common case costs nothing
        }
        held.append(text);
        FilterText normalized = FilterText.of(held);
        int blockAt = Integer.MAX_VALUE;
        String blockedBy = null;
        for (FilterRules.Hit hit : current.scan(normalized.text)) {
            int start = normalized.origin[hit.start()];
            int end = endOfCodePoint(normalized.origin[hit.end() - 1]);
            if (counted.add(new HitKey(releasedChars + start, releasedChars + end, hit.list().name()))) {
                hitsByList.merge(hit.list().name(), 1, Integer::sum);
                listener.hit(hit.list());
            }
            if (hit.list().action() == FilterRules.Action.block) {
                if (start < blockAt) {
                    blockAt = start;
                    blockedBy = hit.list().name();
                }
            } else {
                masked.set(start, end);
            }
        }
        if (blockedBy != null) {
            ended = true;
            return new Step(release(blockAt), blockedBy);
        }
        // a later match is at most longest chars and ends in text not yet here: it starts at or after this
        int keep = current.longest() - 1;
        int from = normalized.text.length() - keep;
        int releaseTo = keep <= 0 ? held.length() : from <= 0 ? 0 : normalized.origin[from];
        return new Step(release(releaseTo), null);
    }

    /** The stream ended: everything still held goes out (it was already scanned as a whole). */
    public String flush() {
        if (ended) {
            return "";
        }
        ended = true;
        return release(held.length());
    }

    /** Matches per list so far (each match once), for the hit record. */
    public Map<String, Integer> hitsByList() {
        return hitsByList;
    }

    private int endOfCodePoint(int start) {
        return start + Character.charCount(Character.codePointAt(held, start));
    }

    /** Lets out held[0, to) with masks applied, and forgets it. */
    private String release(int to) {
        if (to <= 0) {
            return "";
        }
        StringBuilder out = new StringBuilder(to);
        for (int i = 0; i < to;) {
            int cp = Character.codePointAt(held, i);
            int width = Character.charCount(cp);
            if (masked.get(i)) {
                out.append('*');
            } else {
                out.appendCodePoint(cp);
            }
            i += width;
        }
        held.delete(0, to);
        masked = masked.get(to, Math.max(to, masked.length()));
        releasedChars += to;
        if (!counted.isEmpty()) {
            Set<HitKey> still = new HashSet<>();
            for (HitKey key : counted) {
                if (key.end() > releasedChars) {
                    still.add(key);
                }
            }
            counted = still;
        }
        return out.toString();
    }

    /** For tests: what is held back now. */
    int heldChars() {
        return held.length();
    }
}

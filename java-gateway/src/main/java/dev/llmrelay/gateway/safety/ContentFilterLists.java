package dev.llmrelay.gateway.safety;

import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.PatternSyntaxException;

import org.springframework.stereotype.Service;

import io.swagger.v3.oas.annotations.media.Schema;

import dev.llmrelay.gateway.system.ApiProblem;
import dev.llmrelay.gateway.policy.PolicyProperties;
import dev.llmrelay.gateway.policy.PolicyVersions;
import dev.llmrelay.gateway.safety.FilterRules.Action;
import dev.llmrelay.gateway.safety.FilterRules.ListRules;
import dev.llmrelay.gateway.safety.FilterRules.PatternRule;

/**
 * The admin side of the content filter: checks a change completely before writing any of it, then
 * writes it in one transaction with the policy version bump ({@link PolicyVersions#change}).
 */
@Service
class ContentFilterLists {

    static final int MAX_WORD_CHARS = 200;
    static final int MAX_REGEX_CHARS = 1000;
    static final int MAX_PATTERN_LENGTH = 1000;

    private final ContentFilterRepository repository;
    private final PolicyVersions versions;
    private final ContentFilter filter;
    private final PolicyProperties properties;
    private final Clock clock = Clock.systemUTC();

    ContentFilterLists(ContentFilterRepository repository, PolicyVersions versions, ContentFilter filter,
            PolicyProperties properties) {
        this.repository = repository;
        this.versions = versions;
        this.filter = filter;
        this.properties = properties;
    }

    @Schema(description = "A regular expression and the longest text it can match (how much of a stream it "
            + "needs held back); unbounded quantifiers (*, +, {n,}) are refused")
    record PatternChange(String regex, Integer maxLength) {
    }

    @Schema(description = "A whole list: replaces the list of this name, or creates it")
    record ListChange(
            @Schema(allowableValues = {"mask", "block"}) String action,
            @Schema(types = {"boolean", "null"}, description = "refuse prompts that match (default true)")
            Boolean checkPrompt,
            List<String> words,
            List<PatternChange> patterns) {
    }

    @Schema(description = "Entries to add to an existing list")
    record EntriesChange(List<String> words, List<PatternChange> patterns) {
    }

    List<ListRules> lists() {
        return filter.rules().lists();
    }

    Optional<ListRules> find(String name) {
        return lists().stream().filter(l -> l.name().equals(name)).findFirst();
    }

    ListRules replace(String name, ListChange change) {
        checkName(name);
        if (change == null) {
            throw ApiProblem.badRequest("A JSON body with action (mask or block) is required.");
        }
        Action action = action(change.action());
        List<String> words = words(change.words());
        List<PatternRule> patterns = patterns(change.patterns());
        boolean checkPrompt = change.checkPrompt() == null || change.checkPrompt();
        versions.change(() -> {
            long others = repository.entryCount() - repository.idOf(name).map(repository::entryCount).orElse(0L);
            checkTotal(others + words.size() + patterns.size());
            return repository.replace(name, action, checkPrompt, words, patterns, clock.instant());
        });
        return find(name).orElseThrow();
    }

    ListRules add(String name, EntriesChange change) {
        if (change == null) {
            throw ApiProblem.badRequest("A JSON body with words and/or patterns is required.");
        }
        List<String> words = words(change.words());
        List<PatternRule> patterns = patterns(change.patterns());
        if (words.isEmpty() && patterns.isEmpty()) {
            throw ApiProblem.badRequest("Give at least one word or pattern to add.");
        }
        versions.change(() -> {
            long id = repository.idOf(name).orElseThrow(() -> notFound(name));
            checkTotal(repository.entryCount() + words.size() + patterns.size());
            repository.addEntries(id, words, patterns);
            repository.touch(id, clock.instant());
            return id;
        });
        return find(name).orElseThrow();
    }

    /** Deletes the list; 404 (and no version bump) when there is none. */
    void delete(String name) {
        versions.change(() -> {
            if (!repository.delete(name)) {
                throw notFound(name);
            }
            return null;
        });
    }

    List<ContentFilterRepository.HitRow> hits(int limit) {
        if (limit < 1 || limit > 1000) {
            throw ApiProblem.badRequest("limit must be between 1 and 1000.");
        }
        return repository.recentHits(limit);
    }

    static ApiProblem notFound(String name) {
        return ApiProblem.notFound("No content-filter list named '" + name + "'.");
    }

    private void checkTotal(long total) {
        if (total > properties.maxFilterEntries()) {
            throw ApiProblem.badRequest("The lists would hold " + total + " entries; at most "
                    + properties.maxFilterEntries() + " are allowed (gateway.policy.max-filter-entries).");
        }
    }

    /** A request alone over the limit is refused before anything else is checked. */
    private void checkCount(int entries) {
        if (entries > properties.maxFilterEntries()) {
            throw ApiProblem.badRequest("At most " + properties.maxFilterEntries() + " entries are allowed.");
        }
    }

    private static void checkName(String name) {
        if (name == null || !name.matches("[A-Za-z0-9_.-]{1,64}")) {
            throw ApiProblem.badRequest("A list name is 1 to 64 letters, digits, '_', '.' or '-'.");
        }
    }

    private static Action action(String action) {
        if ("mask".equals(action)) {
            return Action.mask;
        }
        if ("block".equals(action)) {
            return Action.block;
        }
        throw ApiProblem.badRequest("action must be 'mask' or 'block'.");
    }

    private List<String> words(List<String> words) {
        if (words == null) {
            return List.of();
        }
        checkCount(words.size());
        List<String> checked = new ArrayList<>(words.size());
        for (int i = 0; i < words.size(); i++) {
            String word = words.get(i) == null ? "" : words.get(i).strip();
            if (word.isEmpty() || FilterText.normalize(word).isBlank()) {
                throw ApiProblem.badRequest("words[" + i + "] is empty.");
            }
            if (word.length() > MAX_WORD_CHARS) {
                throw ApiProblem.badRequest("words[" + i + "] is longer than " + MAX_WORD_CHARS + " characters.");
            }
            checked.add(word);
        }
        return checked;
    }

    private List<PatternRule> patterns(List<PatternChange> patterns) {
        if (patterns == null) {
            return List.of();
        }
        checkCount(patterns.size());
        List<PatternRule> checked = new ArrayList<>(patterns.size());
        for (int i = 0; i < patterns.size(); i++) {
            PatternChange p = patterns.get(i);
            String where = "patterns[" + i + "]";
            if (p == null || p.regex() == null || p.regex().isEmpty()) {
                throw ApiProblem.badRequest(where + ".regex is empty.");
            }
            if (p.regex().length() > MAX_REGEX_CHARS) {
                throw ApiProblem.badRequest(where + ".regex is longer than " + MAX_REGEX_CHARS + " characters.");
            }
            try {
                if (FilterRules.compile(p.regex()).matcher("").matches()) {
                    throw ApiProblem.badRequest(where + ".regex matches the empty text.");
                }
            } catch (PatternSyntaxException e) {
                throw ApiProblem.badRequest(where + ".regex is not a valid regular expression: "
                        + e.getDescription() + " near index " + e.getIndex() + ".");
            }
            if (unbounded(p.regex())) {
                throw ApiProblem.badRequest(where + ".regex has an unbounded quantifier (*, + or {n,}): a stream "
                        + "filter needs a longest match; use {0,n} and set maxLength.");
            }
            if (p.maxLength() == null || p.maxLength() < 1 || p.maxLength() > MAX_PATTERN_LENGTH) {
                throw ApiProblem.badRequest(where + ".maxLength (the longest text it matches) must be 1 to "
                        + MAX_PATTERN_LENGTH + ".");
            }
            checked.add(new PatternRule(p.regex(), p.maxLength()));
        }
        return checked;
    }

    /** Whether a regex can match text of any length: *, + or {n,} outside a character class. */
    static boolean unbounded(String regex) {
        int classDepth = 0;
        for (int i = 0; i < regex.length(); i++) {
            char c = regex.charAt(i);
            if (c == '\\') {
                i++; // the escaped char is a literal (or a class like \d)
            } else if (c == '[') {
                classDepth++;
            } else if (c == ']' && classDepth > 0) {
                classDepth--;
            } else if (classDepth == 0 && (c == '*' || c == '+')) {
                return true;
            } else if (classDepth == 0 && c == '{') {
                int close = regex.indexOf('}', i);
                if (close > 0 && regex.substring(i + 1, close).matches("\\d+,")) {
                    return true;
                }
            }
        }
        return false;
    }
}

package dev.llmrelay.gateway.usage;

import java.time.Duration;
import java.time.Instant;
import java.util.List;

import io.swagger.v3.oas.annotations.Parameter;
import io.swagger.v3.oas.annotations.media.Schema;
import io.swagger.v3.oas.annotations.security.SecurityRequirement;
import io.swagger.v3.oas.annotations.tags.Tag;

import org.springframework.format.annotation.DateTimeFormat;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/** Usage totals per key over a time range, and the latest rows (admin token required). */
@Tag(name = "Admin: usage")
@SecurityRequirement(name = "adminToken")
@RestController
@RequestMapping("/admin/usage")
class AdminUsageController {

    static final int MAX_PAGE = 1000;

    private final UsageRecorder usage;
    private final UsageRollups rollups;
    private final ModelPrices prices;
    private final dev.llmrelay.gateway.keys.ApiKeyService keys;

    AdminUsageController(UsageRecorder usage, UsageRollups rollups, ModelPrices prices,
            dev.llmrelay.gateway.keys.ApiKeyService keys) {
        this.usage = usage;
        this.rollups = rollups;
        this.prices = prices;
        this.keys = keys;
    }

    /**
     * Without {@code groupBy}: {@code keys}, totals per key from the request rows in [from, to) exactly. With it:
     * {@code groups} from the hourly rollups, [from, to) widened to whole UTC hours (the answer's from/to), at
     * most {@code limit} a page, {@code next} the token of the next page (null on the last).
     */
    @com.fasterxml.jackson.annotation.JsonInclude(com.fasterxml.jackson.annotation.JsonInclude.Include.NON_NULL)
    record UsageReport(Instant from, Instant to, List<UsageRepository.KeyTotals> keys,
            @Schema(description = "with groupBy only") List<UsageRollups.Dimension> groupBy,
            @Schema(description = "with groupBy only") List<GroupView> groups,
            @Schema(types = {"string", "null"}, description = "with groupBy only: the next page's token, null on the last")
            @com.fasterxml.jackson.annotation.JsonInclude(com.fasterxml.jackson.annotation.JsonInclude.Include.ALWAYS)
            String next) {
    }

    /** A group: its dimensions (absent when not grouped by them), totals, errors by end reason, percentiles. */
    @com.fasterxml.jackson.annotation.JsonInclude(com.fasterxml.jackson.annotation.JsonInclude.Include.NON_NULL)
    record GroupView(Instant start, Long keyId, String keyName, String model, long requests, long promptTokens,
            long completionTokens, long errors, java.util.Map<String, Long> endReasons, Long ttftP50Ms, Long ttftP95Ms,
            Long durationP50Ms, Long durationP95Ms, List<UsageRollups.Cost> cost) {
    }

    /** {@code from}/{@code to} are ISO-8601 instants; the default range is the last 24 hours. */
    @GetMapping
    UsageReport totals(
            @RequestParam(required = false) @DateTimeFormat(iso = DateTimeFormat.ISO.DATE_TIME) Instant from,
            @RequestParam(required = false) @DateTimeFormat(iso = DateTimeFormat.ISO.DATE_TIME) Instant to,
            @RequestParam(required = false) Long keyId,
            @Parameter(description = "one or two of hour|day (time) and key|model, comma-separated, e.g. hour,model")
            @RequestParam(required = false) String groupBy,
            @RequestParam(required = false) String model,
            @Parameter(schema = @Schema(type = "integer", format = "int32", minimum = "1", maximum = "1000",
                    defaultValue = "100"))
            @RequestParam(defaultValue = "100") int limit,
            @RequestParam(required = false) String page) {
        Instant end = to != null ? to : Instant.now().plusSeconds(1);
        Instant start = from != null ? from : end.minus(Duration.ofDays(1));
        if (!start.isBefore(end)) {
            throw new IllegalArgumentException("'from' must be before 'to'");
        }
        if (groupBy == null) {
            if (model != null || page != null) {
                throw new IllegalArgumentException("model and page go with groupBy");
            }
            return new UsageReport(start, end, usage.totals(start, end, keyId), null, null, null);
        }
        List<UsageRollups.Dimension> dimensions = dimensions(groupBy);
        if (limit < 1 || limit > MAX_PAGE) {
            throw new IllegalArgumentException("limit must be between 1 and " + MAX_PAGE);
        }
        int offset = offset(page);
        Instant hourFrom = start.truncatedTo(java.time.temporal.ChronoUnit.HOURS);
        Instant hourTo = end.truncatedTo(java.time.temporal.ChronoUnit.HOURS);
        if (hourTo.isBefore(end)) {
            hourTo = hourTo.plus(Duration.ofHours(1));
        }
        usage.flush(); // rows recorded before this report are in it
        List<UsageRollups.Group> groups = rollups.report(hourFrom, hourTo, dimensions, keyId, model, prices.byModel());
        java.util.Map<Long, String> names = new java.util.HashMap<>();
        if (dimensions.contains(UsageRollups.Dimension.key)) {
            keys.list().forEach(k -> names.put(k.id(), k.name()));
        }
        List<GroupView> pageOf = groups.stream().skip(offset).limit(limit).map(g -> new GroupView(g.start(), g.keyId(),
                g.keyId() == null ? null : names.get(g.keyId()), g.model(), g.requests(), g.promptTokens(),
                g.completionTokens(), g.errors(), g.endReasons(), g.ttftP50Ms(), g.ttftP95Ms(), g.durationP50Ms(),
                g.durationP95Ms(), g.cost())).toList();
        String next = offset + limit < groups.size() ? token(offset + limit) : null;
        return new UsageReport(hourFrom, hourTo, null, dimensions, pageOf, next);
    }

    private static List<UsageRollups.Dimension> dimensions(String groupBy) {
        List<UsageRollups.Dimension> dimensions = new java.util.ArrayList<>();
        for (String name : groupBy.split(",", -1)) {
            UsageRollups.Dimension dimension;
            try {
                dimension = UsageRollups.Dimension.valueOf(name.strip());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("groupBy takes hour, day, key and model; not '" + name.strip() + "'");
            }
            if (dimensions.contains(dimension)) {
                throw new IllegalArgumentException("groupBy names " + dimension + " twice");
            }
            dimensions.add(dimension);
        }
        long times = dimensions.stream().filter(d -> d == UsageRollups.Dimension.hour || d == UsageRollups.Dimension.day).count();
        if (times > 1 || dimensions.size() - times > 1) {
            throw new IllegalArgumentException("groupBy takes at most one of hour|day and one of key|model");
        }
        return dimensions;
    }

    private static String token(int offset) {
        return java.util.Base64.getUrlEncoder().withoutPadding()
                .encodeToString(("o" + offset).getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    }

    private static int offset(String page) {
        if (page == null) {
            return 0;
        }
        try {
            String decoded = new String(java.util.Base64.getUrlDecoder().decode(page), java.nio.charset.StandardCharsets.US_ASCII);
            int offset = decoded.startsWith("o") ? Integer.parseInt(decoded.substring(1)) : -1;
            if (offset < 0) {
                throw new NumberFormatException();
            }
            return offset;
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("page must be the next token of an earlier answer");
        }
    }

    @GetMapping("/requests")
    List<UsageRecord> recent(
            @Parameter(schema = @Schema(type = "integer", format = "int32", minimum = "1", maximum = "1000",
                    defaultValue = "50"))
            @RequestParam(defaultValue = "50") int limit,
            @RequestParam(required = false) Long keyId) {
        if (limit < 1 || limit > 1000) {
            throw new IllegalArgumentException("limit must be between 1 and 1000");
        }
        return usage.recent(limit, keyId);
    }
}

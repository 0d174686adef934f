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

    private final UsageRecorder usage;

    AdminUsageController(UsageRecorder usage) {
        this.usage = usage;
    }

    record UsageReport(Instant from, Instant to, List<UsageRepository.KeyTotals> keys) {
    }

    /** {@code from}/{@code to} are ISO-8601 instants; the default range is the last 24 hours. */
    @GetMapping
    UsageReport totals(
            @RequestParam(required = false) @DateTimeFormat(iso = DateTimeFormat.ISO.DATE_TIME) Instant from,
            @RequestParam(required = false) @DateTimeFormat(iso = DateTimeFormat.ISO.DATE_TIME) Instant to,
            @RequestParam(required = false) Long keyId) {
        Instant end = to != null ? to : Instant.now().plusSeconds(1);
        Instant start = from != null ? from : end.minus(Duration.ofDays(1));
        if (!start.isBefore(end)) {
            throw new IllegalArgumentException("'from' must be before 'to'");
        }
        return new UsageReport(start, end, usage.totals(start, end, keyId));
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

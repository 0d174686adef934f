package dev.llmrelay.gateway.upstream;

import java.util.List;

import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

import io.swagger.v3.oas.annotations.media.Schema;
import io.swagger.v3.oas.annotations.security.SecurityRequirement;
import io.swagger.v3.oas.annotations.tags.Tag;

/** The model-service replicas as the gateway sees them now (the console's replica table). */
@Tag(name = "Admin: upstreams")
@SecurityRequirement(name = "adminToken")
@RestController
@RequestMapping("/admin/upstreams")
class AdminUpstreamsController {

    private final UpstreamPool pool;

    AdminUpstreamsController(UpstreamPool pool) {
        this.pool = pool;
    }

    /**
     * {@code model}: the pool it belongs to (null: the default pool); {@code waiting} / {@code running}: its
     * queue and batch at the last scrape of its /metrics, null without a fresh one.
     */
    record UpstreamView(String name, @Schema(types = {"string", "null"}) String model, boolean healthy,
            String breaker, int inFlight, @Schema(types = {"integer", "null"}) Integer waiting,
            @Schema(types = {"integer", "null"}) Integer running) {
    }

    record UpstreamList(List<UpstreamView> upstreams) {
    }

    @GetMapping
    UpstreamList list() {
        return new UpstreamList(pool.upstreams().stream().map(u -> {
            UpstreamLoad load = pool.freshLoad(u);
            return new UpstreamView(u.name(), u.model(), u.healthy(), u.breaker().getState().name(), u.inFlight(),
                    load == null ? null : load.waiting(), load == null ? null : load.running());
        }).toList());
    }
}

package dev.llmrelay.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.context.properties.source.MapConfigurationPropertySource;

import dev.llmrelay.gateway.system.GatewayProperties;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;

/** Upstream selection: healthy, breaker closed, fewest calls in flight. */
class UpstreamPoolTest {

    private static UpstreamPool pool(String upstreams) {
        var source = new MapConfigurationPropertySource();
        source.put("gateway.upstreams", upstreams);
        GatewayProperties properties = new Binder(source).bindOrCreate("gateway", GatewayProperties.class);
        return new UpstreamPool(properties, CircuitBreakerRegistry.ofDefaults(), new SimpleMeterRegistry());
    }

    @Test
    void choosesTheUpstreamWithFewestCallsInFlight() {
        UpstreamPool pool = pool("http://a:1,http://b:1,http://c:1");
        List<UpstreamLease> leases = new ArrayList<>();
        for (int i = 0; i < 9; i++) {
            leases.add(pool.acquire(Set.of()).orElseThrow());
        }
        assertThat(pool.upstreams()).allSatisfy(u -> assertThat(u.inFlight()).isEqualTo(3));
        Upstream b = pool.upstreams().get(1);
        leases.stream().filter(l -> l.upstream() == b).findFirst().orElseThrow().succeeded();
        assertThat(pool.acquire(Set.of()).orElseThrow().upstream()).isSameAs(b);
    }

    @Test
    void skipsUnhealthyOpenAndExcludedUpstreams() {
        UpstreamPool pool = pool("http://a:1,http://b:1,http://c:1");
        Upstream a = pool.upstreams().get(0);
        Upstream b = pool.upstreams().get(1);
        Upstream c = pool.upstreams().get(2);
        a.healthy(false);
        b.breaker().transitionToOpenState();
        for (int i = 0; i < 5; i++) {
            assertThat(pool.acquire(Set.of()).orElseThrow().upstream()).isSameAs(c);
        }
        assertThat(pool.acquire(Set.of(c))).isEmpty();
    }

    @Test
    void aLeaseEndsOnceAndAnAbandonedCallDoesNotCountAgainstTheBreaker() {
        UpstreamPool pool = pool("http://a:1");
        Upstream a = pool.upstreams().get(0);
        UpstreamLease lease = pool.acquire(Set.of()).orElseThrow();
        lease.released();
        lease.failed(new RuntimeException("late")); // ignored: the lease already ended
        assertThat(a.inFlight()).isZero();
        assertThat(a.breaker().getMetrics().getNumberOfFailedCalls()).isZero();
        pool.acquire(Set.of()).orElseThrow().failed(new RuntimeException("boom"));
        assertThat(a.breaker().getMetrics().getNumberOfFailedCalls()).isEqualTo(1);
    }

    /** Every replica of {@code pool} with a fresh load: {@code waiting} queued on {@code busy}, none elsewhere. */
    private static void loads(UpstreamPool pool, String busy, int waiting) {
        for (Upstream upstream : pool.upstreams()) {
            upstream.load(new UpstreamLoad(upstream.name().equals(busy) ? waiting : 0, 1, Double.NaN,
                    System.nanoTime()));
        }
    }

    private static String home(UpstreamPool pool, String affinityKey) {
        UpstreamLease lease = pool.acquire(Set.of(), affinityKey).orElseThrow();
        lease.released();
        return lease.upstream().name();
    }

    @Test
    void twoInstancesSendAKeyToTheSameReplicaWithoutSharingStateAndMoveItOnlyWhileItIsOverloaded() {
        // two gateway instances: pools of their own over the same replicas, listed in different orders
        UpstreamPool first = pool("http://a:1,http://b:1,http://c:1");
        UpstreamPool second = pool("http://c:1,http://a:1,http://b:1");
        loads(first, null, 0);
        loads(second, null, 0);
        Set<String> homes = new java.util.HashSet<>();
        for (int i = 0; i < 60; i++) {
            String key = "conversation:" + i;
            String home = home(first, key);
            for (int turn = 0; turn < 3; turn++) { // the next turns, on either instance
                assertThat(home(second, key)).as(key).isEqualTo(home);
                assertThat(home(first, key)).as(key).isEqualTo(home);
            }
            homes.add(home);
        }
        assertThat(homes).containsExactlyInAnyOrder("http://a:1", "http://b:1", "http://c:1");

        String key = "user:7:alice";
        String home = home(first, key);
        // busier but not overloaded (4 waiting, the limit): the key stays; a request without one does not
        loads(first, home, 4);
        loads(second, home, 4);
        assertThat(home(first, key)).isEqualTo(home);
        assertThat(home(second, key)).isEqualTo(home);
        assertThat(home(first, null)).isNotEqualTo(home);
        // overloaded (5 waiting): both instances move the key to the same other replica
        loads(first, home, 5);
        loads(second, home, 5);
        String moved = home(first, key);
        assertThat(moved).isNotEqualTo(home);
        assertThat(home(second, key)).isEqualTo(moved);
        assertThat(home(first, key)).isEqualTo(moved);
        // recovered: back home on both
        loads(first, home, 0);
        loads(second, home, 0);
        assertThat(home(first, key)).isEqualTo(home);
        assertThat(home(second, key)).isEqualTo(home);
    }

    @Test
    void pathsAreAppendedToTheBaseUrl() {
        UpstreamPool pool = pool("http://model:6006/");
        assertThat(pool.upstreams().get(0).name()).isEqualTo("http://model:6006");
        assertThat(pool.upstreams().get(0).url("/v1/chat/completions").toString())
                .isEqualTo("http://model:6006/v1/chat/completions");
    }

    @Test
    void upstreamsNamedWithAModelFormThatModelsPoolAndTheRestServeEveryOtherModel() {
        UpstreamPool pool = pool("smollm2=http://a:1,Qwen/Qwen2.5:7b=http://b:1/,http://c:1,http://d:1");
        Upstream a = pool.upstreams().get(0);
        Upstream b = pool.upstreams().get(1);
        Upstream c = pool.upstreams().get(2);
        Upstream d = pool.upstreams().get(3);
        assertThat(pool.upstreams()).extracting(Upstream::name)
                .containsExactly("http://a:1", "http://b:1", "http://c:1", "http://d:1");
        assertThat(pool.upstreams()).extracting(Upstream::model).containsExactly("smollm2", "Qwen/Qwen2.5:7b", null, null);
        assertThat(pool.outsidePool("smollm2")).containsExactlyInAnyOrder(b, c, d);
        assertThat(pool.outsidePool("Qwen/Qwen2.5:7b")).containsExactlyInAnyOrder(a, c, d);
        assertThat(pool.outsidePool("other")).containsExactlyInAnyOrder(a, b);
        assertThat(pool.outsidePool(null)).containsExactlyInAnyOrder(a, b);
        assertThat(pool.serves("other")).isTrue();
        assertThat(pool.pools()).containsExactly(null, "smollm2", "Qwen/Qwen2.5:7b");

        UpstreamPool grouped = pool("smollm2=http://a:1");
        assertThat(grouped.serves("smollm2")).isTrue();
        assertThat(grouped.serves("other")).isFalse();
        assertThat(grouped.outsidePool(null)).isEmpty(); // no model named (browser API): every upstream
        assertThat(grouped.pools()).containsExactly("smollm2");
        assertThat(pool("http://a:1").pools()).containsExactly((String) null);
        assertThat(pool("http://a:1").outsidePool("anything")).isEmpty();
    }
}

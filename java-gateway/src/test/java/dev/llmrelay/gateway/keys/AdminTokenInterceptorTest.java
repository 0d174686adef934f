package dev.llmrelay.gateway.keys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.context.properties.source.MapConfigurationPropertySource;
import org.springframework.mock.web.MockHttpServletRequest;
import org.springframework.mock.web.MockHttpServletResponse;
import org.springframework.web.ErrorResponseException;

import dev.llmrelay.gateway.system.GatewayProperties;

class AdminTokenInterceptorTest {

    private static GatewayProperties properties(String adminToken) {
        var source = new MapConfigurationPropertySource();
        if (adminToken != null) {
            source.put("gateway.admin-token", adminToken);
        }
        return new Binder(source).bindOrCreate("gateway", GatewayProperties.class);
    }

    @Test
    void withoutAConfiguredAdminTokenTheAdminApiDoesNotExist() {
        var interceptor = new AdminTokenInterceptor(properties(null), new AdminSessions(properties(null)));
        var request = new MockHttpServletRequest("GET", "/admin/keys");
        request.addHeader("Authorization", "Bearer anything");
        assertThatThrownBy(() -> interceptor.preHandle(request, new MockHttpServletResponse(), null))
                .isInstanceOfSatisfying(ErrorResponseException.class,
                        e -> assertThat(e.getStatusCode().value()).isEqualTo(404));
    }

    @Test
    void theRightTokenPasses() {
        var interceptor = new AdminTokenInterceptor(properties("s3cret"), new AdminSessions(properties("s3cret")));
        var request = new MockHttpServletRequest("GET", "/admin/keys");
        request.addHeader("Authorization", "bearer s3cret");
        assertThat(interceptor.preHandle(request, new MockHttpServletResponse(), null)).isTrue();
    }
}

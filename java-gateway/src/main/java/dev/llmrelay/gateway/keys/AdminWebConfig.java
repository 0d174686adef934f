package dev.llmrelay.gateway.keys;

import org.springframework.context.annotation.Configuration;
import org.springframework.web.servlet.config.annotation.InterceptorRegistry;
import org.springframework.web.servlet.config.annotation.WebMvcConfigurer;

import dev.llmrelay.gateway.system.GatewayProperties;

@Configuration(proxyBeanMethods = false)
class AdminWebConfig implements WebMvcConfigurer {

    private final GatewayProperties properties;
    private final AdminSessions sessions;

    AdminWebConfig(GatewayProperties properties, AdminSessions sessions) {
        this.properties = properties;
        this.sessions = sessions;
    }

    @Override
    public void addInterceptors(InterceptorRegistry registry) {
        registry.addInterceptor(new AdminTokenInterceptor(properties, sessions)).addPathPatterns("/admin/**");
    }
}

package dev.llmrelay.gateway.conversation;

import java.util.List;

import org.springframework.context.annotation.Configuration;
import org.springframework.scheduling.annotation.EnableScheduling;
import org.springframework.web.method.support.HandlerMethodArgumentResolver;
import org.springframework.web.servlet.config.annotation.WebMvcConfigurer;

@Configuration(proxyBeanMethods = false)
@EnableScheduling
class BrowserWebConfig implements WebMvcConfigurer {

    private final BrowserSessionService sessions;

    BrowserWebConfig(BrowserSessionService sessions) {
        this.sessions = sessions;
    }

    @Override
    public void addArgumentResolvers(List<HandlerMethodArgumentResolver> resolvers) {
        resolvers.add(new BrowserSessionResolver(sessions));
    }
}

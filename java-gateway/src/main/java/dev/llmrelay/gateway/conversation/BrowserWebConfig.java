package dev.llmrelay.gateway.conversation;

import java.util.List;

import org.springdoc.core.utils.SpringDocUtils;
import org.springframework.context.annotation.Configuration;
import org.springframework.scheduling.annotation.EnableScheduling;
import org.springframework.web.method.support.HandlerMethodArgumentResolver;
import org.springframework.web.servlet.config.annotation.WebMvcConfigurer;

import io.swagger.v3.oas.annotations.enums.SecuritySchemeIn;
import io.swagger.v3.oas.annotations.enums.SecuritySchemeType;
import io.swagger.v3.oas.annotations.security.SecurityScheme;

/**
 * Resolves the {@link BrowserSession} parameter of browser API handlers from the session cookie,
 * which the OpenAPI document shows as a cookie security scheme rather than a parameter.
 */
@Configuration(proxyBeanMethods = false)
@EnableScheduling
@SecurityScheme(name = BrowserWebConfig.SECURITY, type = SecuritySchemeType.APIKEY, in = SecuritySchemeIn.COOKIE,
        paramName = BrowserSessionService.COOKIE, description = "Set by POST /api/session")
class BrowserWebConfig implements WebMvcConfigurer {

    /** The OpenAPI security scheme of the session cookie. */
    static final String SECURITY = "browserSession";

    static {
        SpringDocUtils.getConfig().addRequestWrapperToIgnore(BrowserSession.class);
    }

    private final BrowserSessionService sessions;

    BrowserWebConfig(BrowserSessionService sessions) {
        this.sessions = sessions;
    }

    @Override
    public void addArgumentResolvers(List<HandlerMethodArgumentResolver> resolvers) {
        resolvers.add(new BrowserSessionResolver(sessions));
    }
}

package dev.llmrelay.gateway.conversation;

import dev.llmrelay.gateway.system.ApiProblem;

import jakarta.servlet.http.HttpServletRequest;

import org.springframework.core.MethodParameter;
import org.springframework.web.bind.support.WebDataBinderFactory;
import org.springframework.web.context.request.NativeWebRequest;
import org.springframework.web.method.support.HandlerMethodArgumentResolver;
import org.springframework.web.method.support.ModelAndViewContainer;

/** Supplies the {@link BrowserSession} parameter of browser API handlers, or answers 401. */
class BrowserSessionResolver implements HandlerMethodArgumentResolver {

    private final BrowserSessionService sessions;

    BrowserSessionResolver(BrowserSessionService sessions) {
        this.sessions = sessions;
    }

    @Override
    public boolean supportsParameter(MethodParameter parameter) {
        return parameter.getParameterType() == BrowserSession.class;
    }

    @Override
    public Object resolveArgument(MethodParameter parameter, ModelAndViewContainer mavContainer,
            NativeWebRequest webRequest, WebDataBinderFactory binderFactory) {
        HttpServletRequest request = webRequest.getNativeRequest(HttpServletRequest.class);
        return sessions.resolve(request)
                .orElseThrow(() -> ApiProblem.unauthorized("Sign in with an API key first (POST /api/session)."));
    }
}

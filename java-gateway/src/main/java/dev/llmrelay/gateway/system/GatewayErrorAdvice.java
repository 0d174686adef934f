package dev.llmrelay.gateway.system;

import java.util.LinkedHashMap;
import java.util.Map;

import jakarta.servlet.http.HttpServletRequest;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.HttpStatusCode;
import org.springframework.http.MediaType;
import org.springframework.http.ProblemDetail;
import org.springframework.http.ResponseEntity;
import org.springframework.http.converter.HttpMessageNotReadableException;
import org.springframework.web.ErrorResponse;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.RestControllerAdvice;
import org.springframework.web.context.request.async.AsyncRequestNotUsableException;
import org.springframework.web.method.annotation.MethodArgumentTypeMismatchException;

/**
 * The one place errors become responses: OpenAI's error shape under {@code /v1}, RFC 9457 problem
 * details everywhere else (admin API, browser API).
 */
@RestControllerAdvice
public class GatewayErrorAdvice {

    private static final Logger log = LoggerFactory.getLogger(GatewayErrorAdvice.class);

    @ExceptionHandler(OpenAiException.class)
    ResponseEntity<Object> openAi(OpenAiException e, HttpServletRequest request) {
        HttpHeaders headers = new HttpHeaders();
        e.headers().forEach(headers::set);
        if (isV1(request)) {
            return ResponseEntity.status(e.status()).headers(headers).contentType(MediaType.APPLICATION_JSON)
                    .body(openAiBody(e.getMessage(), e.type(), e.param(), e.code()));
        }
        ProblemDetail problem = ProblemDetail.forStatusAndDetail(HttpStatusCode.valueOf(e.status()), e.getMessage());
        problem.setProperty("code", e.code());
        return ResponseEntity.status(e.status()).headers(headers).contentType(MediaType.APPLICATION_PROBLEM_JSON)
                .body(problem);
    }

    /** Spring MVC's own errors (404, 405, 415, ...) keep their status, in the path's shape. */
    private ResponseEntity<Object> springError(ErrorResponse error, HttpServletRequest request) {
        HttpStatusCode status = error.getStatusCode();
        if (isV1(request)) {
            String type = status.is4xxClientError() ? "invalid_request_error" : "server_error";
            String code = status.value() == 404 ? "not_found" : status.value() == 405 ? "method_not_allowed"
                    : status.is4xxClientError() ? "invalid_request" : "internal_error";
            return ResponseEntity.status(status).headers(error.getHeaders()).contentType(MediaType.APPLICATION_JSON)
                    .body(openAiBody(error.getBody().getDetail(), type, null, code));
        }
        return ResponseEntity.status(status).headers(error.getHeaders()).contentType(MediaType.APPLICATION_PROBLEM_JSON)
                .body(error.getBody());
    }

    @ExceptionHandler({HttpMessageNotReadableException.class, MethodArgumentTypeMismatchException.class,
            IllegalArgumentException.class})
    ResponseEntity<Object> badRequest(Exception e, HttpServletRequest request) {
        String message = e instanceof HttpMessageNotReadableException
                ? "Request body is not valid JSON of the expected shape" : e.getMessage();
        if (isV1(request)) {
            return ResponseEntity.badRequest().contentType(MediaType.APPLICATION_JSON)
                    .body(openAiBody(message, "invalid_request_error", null, "invalid_request"));
        }
        ProblemDetail problem = ProblemDetail.forStatusAndDetail(HttpStatus.BAD_REQUEST, message);
        problem.setTitle("Bad request");
        return ResponseEntity.badRequest().contentType(MediaType.APPLICATION_PROBLEM_JSON).body(problem);
    }

    /** The client went away while we wrote: nothing can be answered. */
    @ExceptionHandler(AsyncRequestNotUsableException.class)
    void clientGone() {
    }

    @ExceptionHandler(Exception.class)
    ResponseEntity<Object> unexpected(Exception e, HttpServletRequest request) {
        if (e instanceof ErrorResponse error) {
            return springError(error, request);
        }
        log.error("unhandled error on {} {}", request.getMethod(), request.getRequestURI(), e);
        if (isV1(request)) {
            return ResponseEntity.internalServerError().contentType(MediaType.APPLICATION_JSON)
                    .body(openAiBody("Internal gateway error", "server_error", null, "internal_error"));
        }
        ProblemDetail problem = ProblemDetail.forStatusAndDetail(HttpStatus.INTERNAL_SERVER_ERROR,
                "Internal gateway error");
        return ResponseEntity.internalServerError().contentType(MediaType.APPLICATION_PROBLEM_JSON).body(problem);
    }

    private static boolean isV1(HttpServletRequest request) {
        return request.getRequestURI().startsWith("/v1/") || request.getRequestURI().equals("/v1");
    }

    /** OpenAI's error body; null members are written as JSON null, as OpenAI does. */
    public static Map<String, Object> openAiBody(String message, String type, String param, String code) {
        Map<String, Object> error = new LinkedHashMap<>();
        error.put("message", message);
        error.put("type", type);
        error.put("param", param);
        error.put("code", code);
        return Map.of("error", error);
    }
}

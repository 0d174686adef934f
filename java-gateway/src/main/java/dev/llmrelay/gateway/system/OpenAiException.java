package dev.llmrelay.gateway.system;

import java.util.Map;

/**
 * An error answered on /v1 in OpenAI's shape {@code {"error":{"message","type","param","code"}}}.
 * {@code headers} are added to the response (Retry-After, X-RateLimit-*).
 */
public class OpenAiException extends RuntimeException {

    private final int status;
    private final String type;
    private final String code;
    private final String param;
    private final Map<String, String> headers;

    public OpenAiException(int status, String type, String code, String message) {
        this(status, type, code, null, message, Map.of());
    }

    public OpenAiException(int status, String type, String code, String param, String message,
            Map<String, String> headers) {
        super(message);
        this.status = status;
        this.type = type;
        this.code = code;
        this.param = param;
        this.headers = headers;
    }

    public static OpenAiException badRequest(String param, String message) {
        return new OpenAiException(400, "invalid_request_error", "invalid_request", param, message, Map.of());
    }

    public static OpenAiException unauthorized(String message) {
        return new OpenAiException(401, "invalid_request_error", "invalid_api_key", message);
    }

    public int status() {
        return status;
    }

    public String type() {
        return type;
    }

    public String code() {
        return code;
    }

    public String param() {
        return param;
    }

    public Map<String, String> headers() {
        return headers;
    }
}

package dev.llmrelay.gateway.system;

import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import org.springframework.http.HttpStatus;
import org.springframework.http.ProblemDetail;
import org.springframework.web.ErrorResponseException;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * An RFC 9457 problem answered by the browser API and the admin API ({@link GatewayErrorAdvice} writes
 * every {@link org.springframework.web.ErrorResponse} as application/problem+json). Lives beside the /v1
 * error ({@link OpenAiException}) so that no feature package depends on another for its errors.
 */
public final class ApiProblem extends ErrorResponseException {

    private ApiProblem(HttpStatus status, String title, String detail) {
        super(status, problem(status, title, detail), null);
    }

    private static ProblemDetail problem(HttpStatus status, String title, String detail) {
        ProblemDetail problem = ProblemDetail.forStatusAndDetail(status, detail);
        problem.setTitle(title);
        return problem;
    }

    /** The model could not be asked (429 limits, 503 no upstream), with the wait when one helps. */
    public static ApiProblem refused(int status, String code, String detail, long retryAfterSeconds) {
        HttpStatus resolved = HttpStatus.resolve(status);
        ApiProblem problem = new ApiProblem(resolved == null ? HttpStatus.BAD_GATEWAY : resolved,
                status == 503 ? "Model service unavailable" : "Request refused", detail);
        problem.getBody().setProperty("code", code);
        if (retryAfterSeconds > 0) {
            problem.getHeaders().set("Retry-After", Long.toString(retryAfterSeconds));
        }
        return problem;
    }

    /** A shared part (Redis) did not answer: 503 with a short wait, never a 500. */
    public static ApiProblem unavailable(String code, String detail, long retryAfterSeconds) {
        ApiProblem problem = new ApiProblem(HttpStatus.SERVICE_UNAVAILABLE, "Service unavailable", detail);
        problem.getBody().setProperty("code", code);
        problem.getHeaders().set("Retry-After", Long.toString(retryAfterSeconds));
        return problem;
    }

    public static ApiProblem badRequest(String detail) {
        return new ApiProblem(HttpStatus.BAD_REQUEST, "Bad request", detail);
    }

    public static ApiProblem unauthorized(String detail) {
        return new ApiProblem(HttpStatus.UNAUTHORIZED, "Not signed in", detail);
    }

    public static ApiProblem notFound(String detail) {
        return new ApiProblem(HttpStatus.NOT_FOUND, "Not found", detail);
    }

    /** 404 with a machine-readable {@code code} (e.g. {@code model_not_found}). */
    public static ApiProblem notFound(String code, String detail) {
        ApiProblem problem = notFound(detail);
        problem.getBody().setProperty("code", code);
        return problem;
    }

    public static ApiProblem conflict(String detail) {
        return new ApiProblem(HttpStatus.CONFLICT, "Conflict", detail);
    }

    /**
     * Refuses (400) any member of {@code body} outside {@code known}, before anything is created or changed:
     * a misspelt setting must not leave the default in force.
     */
    public static void requireKnownMembers(JsonNode body, Set<String> known) {
        for (Iterator<String> names = body.fieldNames(); names.hasNext();) {
            String name = names.next();
            if (!known.contains(name)) {
                throw badRequest("Unknown member '" + name + "'; known: " + List.copyOf(new TreeSet<>(known)) + ".");
            }
        }
    }
}

package httpapi

import (
	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/host/problem"
)

// ProblemContentType is the media type of every error kasse answers with (RFC 9457).
const ProblemContentType = problem.ContentType

// problemFor maps an error from the layers below to the problem the client sees (the same mapping on
// every surface: host/problem).
func problemFor(err error) problem.Problem { return problem.For(err) }

// abortProblem writes p (with the request's id as instance) and stops the handler chain.
func abortProblem(c *gin.Context, p problem.Problem) { problem.Abort(c, requestID(c), p) }

package httpapi

import (
	"io/fs"
	"net/http"
	"regexp"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/host/problem"
	"github.com/kassehq/kasse/schemas"
)

// schemaRef matches a reference of the OpenAPI document to one of the schema files by file name.
var schemaRef = regexp.MustCompile(`("\$ref":\s*")([a-z0-9-]+\.schema\.json)`)

// serveSpec adds GET /openapi.json, the OpenAPI document of kasse's HTTP surface, and GET /schemas/{file},
// the JSON Schemas it refers to. In the repository the document sits beside the schemas and refers to
// them by file name; the served copy refers to /schemas/{file}, where a client resolving it finds them.
// Both are built once here, so a request costs a write.
func serveSpec(r gin.IRouter) {
	doc := schemaRef.ReplaceAll(schemas.OpenAPI(), []byte("${1}/schemas/${2}"))
	r.GET("/openapi.json", func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=300")
		c.Data(http.StatusOK, "application/json", doc)
	})
	r.GET("/schemas/:file", func(c *gin.Context) {
		name := c.Param("file")
		raw, err := fs.ReadFile(schemas.FS(), name)
		if err != nil || !strings.HasSuffix(name, ".schema.json") {
			abortProblem(c, problem.Problem{Type: problem.Base + "not-found", Title: "Not found",
				Status: http.StatusNotFound, Detail: "no schema " + quote(name)})
			return
		}
		c.Header("Cache-Control", "public, max-age=300")
		c.Data(http.StatusOK, "application/schema+json", raw)
	})
}

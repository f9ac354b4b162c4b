// Package httpclient builds the HTTP clients that talk to quorumkv's API:
// the CLI's and the benchmark driver's. A client sends its bearer token
// on every request (never across a redirect to another host), verifies
// an https:// node against the cluster CA when given one, and never puts
// the token in an error.
//
//	c, err := httpclient.New(httpclient.Config{Token: tok, CAFile: "ca.pem"})
//	resp, err := c.Get("https://127.0.0.1:8081/v1/cluster")
package httpclient

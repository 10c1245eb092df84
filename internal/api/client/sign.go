package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/kiln-serve/kiln/internal/api"
	"github.com/kiln-serve/kiln/internal/clock"
)

// Signing scope of the native API. Kiln accepts a signature in any region
// and service scope (its keys are its own, not AWS's), so these only name
// what the kiln CLI puts in the Credential of its Authorization header.
const (
	NativeSigningService = "kiln"
	NativeSigningRegion  = "us-east-1"
)

// Authorize adds c's credentials to req, whose body is body: a SigV4
// signature when c has an access key (with X-Amz-Content-Sha256 signed, so
// that the server checks the signature before reading the body), else the
// token as a bearer token, else nothing. It refuses a secret access key
// given as the token, rather than send it.
func (c *Client) Authorize(ctx context.Context, req *http.Request, body []byte) error {
	switch {
	case c.AccessKeyID != "" || c.SecretAccessKey != "":
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return fmt.Errorf("an access key needs both its ID and its secret (--access-key-id and --secret-access-key, or KILN_ACCESS_KEY_ID and KILN_SECRET_ACCESS_KEY)")
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		req.Header.Set("X-Amz-Content-Sha256", hash)
		now := clock.Real().Now()
		if c.Now != nil {
			now = c.Now()
		}
		creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey}
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, NativeSigningService, NativeSigningRegion, now); err != nil {
			return fmt.Errorf("sign request: %w", err)
		}
	case c.Token != "":
		if !api.IsToken(c.Token) {
			return fmt.Errorf("--token (KILN_TOKEN) takes a token from `kiln token` (kiln1...), not a secret access key: " +
				"give the key with --access-key-id and --secret-access-key (or KILN_ACCESS_KEY_ID and KILN_SECRET_ACCESS_KEY) instead")
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(c.Token))
	}
	return nil
}

// Token mints a token of c's access key with role ("" for the key's own)
// that lasts ttl (0 for the server's default).
func (c *Client) MintToken(ctx context.Context, ttlSeconds int64, role string) (*api.TokenResponse, error) {
	var out api.TokenResponse
	return &out, c.do(ctx, "POST", "/v1/tokens", api.TokenRequest{TTLSeconds: ttlSeconds, Role: role}, &out)
}

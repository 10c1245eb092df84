package cloudwatch

import (
	"encoding/base64"
	"strings"
)

// Paging tokens are opaque to clients: the kind of listing and where the
// next page starts.
func encodeToken(kind, pos string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + pos))
}

func decodeToken(kind, token string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", false
	}
	pos, ok := strings.CutPrefix(string(b), kind+":")
	return pos, ok
}

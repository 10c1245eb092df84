package cloudwatch

import (
	"encoding/base64"
	"strconv"
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

// offsetPage lists items with list and returns the page of at most max of
// them that token starts (none: the first), with the token of the next
// page ("" after the last). Its tokens hold an offset into the list, as
// kind (a listing's own name) says. A bad token is refused before list is
// called.
func offsetPage[T any](kind, token string, max int, list func() ([]T, error)) (page []T, next string, err error) {
	offset := 0
	if token != "" {
		s, ok := decodeToken(kind, token)
		n, err := strconv.Atoi(s)
		if !ok || err != nil || n < 0 {
			return nil, "", errNextToken(token)
		}
		offset = n
	}
	items, err := list()
	if err != nil {
		return nil, "", err
	}
	page = items[min(offset, len(items)):]
	if len(page) > max {
		page = page[:max]
		next = encodeToken(kind, strconv.Itoa(offset+max))
	}
	return page, next, nil
}

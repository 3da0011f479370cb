package debfmt

import (
	"fmt"
	"strconv"
	"strings"
)

// PercentDecode undoes %xx escapes (two hex digits per byte), as apt's
// QuoteString writes them in the Pre-Install-Pkgs protocol and debseal's
// manifests write blanks and control characters.
func PercentDecode(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated %%-escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad %%-escape %q", s[i:i+3])
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

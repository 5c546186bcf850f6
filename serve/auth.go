package serve

import (
	"bufio"
	"bytes"
	"fmt"
	"os"

	gossh "golang.org/x/crypto/ssh"
)

// authorizedKey is one key of an authorized_keys file.
type authorizedKey struct {
	key     gossh.PublicKey
	comment string
}

// readAuthorizedKeys parses an authorized_keys file: one key per line,
// blank lines and # comments skipped. Options before a key are accepted
// and not enforced. A line that does not parse is reported with its
// number and the rest are read.
func readAuthorizedKeys(path string) ([]authorizedKey, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("authorized keys: %w", err)
	}
	defer f.Close()
	var keys []authorizedKey
	var bad []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, comment, _, _, err := gossh.ParseAuthorizedKey(line)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s line %d: %v", path, n, err))
			continue
		}
		keys = append(keys, authorizedKey{key: k, comment: comment})
	}
	if err := sc.Err(); err != nil {
		return keys, bad, fmt.Errorf("read authorized keys %s: %w", path, err)
	}
	return keys, bad, nil
}

// authorized looks key up in the file at path, read again on every
// attempt so keys added or removed take effect without a restart.
func authorized(path string, key gossh.PublicKey) (authorizedKey, bool) {
	keys, _, err := readAuthorizedKeys(path)
	if err != nil {
		return authorizedKey{}, false
	}
	want := key.Marshal()
	for _, k := range keys {
		if bytes.Equal(k.key.Marshal(), want) {
			return k, true
		}
	}
	return authorizedKey{}, false
}

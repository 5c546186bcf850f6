package serve

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	gossh "golang.org/x/crypto/ssh"
)

// HostKey loads the server's private host key from path, creating an
// ed25519 key there (mode 0600, its directory 0700) when the file does
// not exist, so clients see the same fingerprint on every start. created
// says it was made now. A key file others may read is refused, as OpenSSH
// does.
func HostKey(path string) (signer gossh.Signer, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		b, err = createHostKey(path)
		if err != nil {
			return nil, false, err
		}
		created = true
	} else if err != nil {
		return nil, false, fmt.Errorf("read host key %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, false, fmt.Errorf("host key %s: %w", path, err)
	}
	if mode := st.Mode().Perm(); mode&0o077 != 0 {
		return nil, false, fmt.Errorf("host key %s is readable by others (mode %04o): run `chmod 600 %s`", path, mode, path)
	}
	signer, err = gossh.ParsePrivateKey(b)
	if err != nil {
		return nil, false, fmt.Errorf("host key %s: %w (move it away and a new one is created)", path, err)
	}
	return signer, created, nil
}

// createHostKey writes a new ed25519 key in OpenSSH format to path; it
// fails rather than replace a file another process created meanwhile.
func createHostKey(path string) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("host key dir: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate host key: %w", err)
	}
	blk, err := gossh.MarshalPrivateKey(priv, "quantscope serve host key")
	if err != nil {
		return nil, fmt.Errorf("encode host key: %w", err)
	}
	b := pem.EncodeToMemory(blk)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create host key %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("write host key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write host key %s: %w", path, err)
	}
	return b, nil
}

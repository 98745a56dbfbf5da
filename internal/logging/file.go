package logging

import (
	"fmt"
	"io"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// RotatingFile opens path for appending (creating it and its directory) and
// rotates it when it reaches maxSizeMB: the old file is renamed with a
// timestamp, at most maxBackups of them are kept (0: all) and those older
// than maxAge are removed (0: never; rounded up to whole days, the
// rotation library's unit). The file is opened now so that a path that
// cannot be written is an error at start, not a silent loss of logs.
func RotatingFile(path string, maxSizeMB, maxBackups int, maxAge time.Duration) (io.WriteCloser, error) {
	days := 0
	if maxAge > 0 {
		days = int((maxAge + 24*time.Hour - 1) / (24 * time.Hour))
	}
	l := &lumberjack.Logger{Filename: path, MaxSize: maxSizeMB, MaxBackups: maxBackups, MaxAge: days}
	if _, err := l.Write(nil); err != nil {
		return nil, fmt.Errorf("log.file: cannot open %s: %w", path, err)
	}
	return l, nil
}

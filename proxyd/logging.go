package main

import (
	"fmt"
	"io"
	"log/slog"
	"math"

	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"

	"github.com/lbkit/lbkit/proxyd/config"
)

// newLogger builds the daemon's logger: JSON (the default) or console lines
// to w; verbosity v enables debug (v >= 1) and finer levels below it.
func newLogger(format string, v int, w io.Writer) (*zap.Logger, error) {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	var encoder zapcore.Encoder
	switch format {
	case "", config.LogFormatJSON:
		encoder = zapcore.NewJSONEncoder(enc)
	case config.LogFormatConsole:
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	default:
		return nil, fmt.Errorf("unknown log format %q (want json or console)", format)
	}
	level := zapcore.InfoLevel - zapcore.Level(min(max(v, 0), 100))
	core := zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(w)), zap.NewAtomicLevelAt(level))
	return zap.New(core), nil
}

// slogOf hands a library package (lb, a backend, sources/file), which logs
// with log/slog, the daemon's zap logger l: same output, level and fields,
// l's name as the entry's logger name, and no stack traces (zapslog adds
// them to errors by default; proxyd's own zap logger never does).
func slogOf(l *zap.Logger) *slog.Logger {
	return slog.New(zapslog.NewHandler(l.Core(), zapslog.WithName(l.Name()), zapslog.AddStacktraceAt(slog.Level(math.MaxInt))))
}

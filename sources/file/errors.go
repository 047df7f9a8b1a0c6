package file

import "github.com/lbkit/lbkit/internal/yamlline"

// Error is one problem in a services file, located by file, line and field.
// Its Error method formats it as "FILE:LINE: FIELD: MSG"; Err holds the
// underlying error, such as an *lb.ValidationError or the error a Sink
// returned, and is nil when the problem was found while decoding.
type Error = yamlline.Error

// ErrorList is every problem Parse found in one file, in file order.
type ErrorList = yamlline.ErrorList

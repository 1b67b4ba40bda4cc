"""Speed and work measurements: multiply-add counts (`flops`) and the timing harness
(`speed`) behind `pwavenet bench`."""

#!/bin/sh
# Shipped in the InputSandbox of simple.jdl (the example runs /bin/hostname; this file only travels).
echo "myscript.sh ran on $(hostname -f)"

// The `flowmesh` command line.
#include "cli/cli.h"

int main(int argc, char** argv) { return flowmesh::cli::Run(argc, argv); }

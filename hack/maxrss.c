/* maxrss FILE CMD ARGS...: runs CMD, appends its peak RSS in KiB (wait4's ru_maxrss) to FILE,
 * exits with its status. A small C parent, so that the fork's copy of the parent does not
 * inflate the child's high-water mark (as a Python parent's would). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: maxrss FILE CMD ARGS...\n"); return 2; }
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 2; }
    if (pid == 0) { execvp(argv[2], argv + 2); perror("execvp"); _exit(127); }
    int status; struct rusage usage;
    if (wait4(pid, &status, 0, &usage) < 0) { perror("wait4"); return 2; }
    FILE *out = fopen(argv[1], "a");
    if (out) { fprintf(out, "%ld\n", usage.ru_maxrss); fclose(out); }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

package org.vfioexport.ffm.posix;

/** What fstat(2) tells of an open file: the file type and permission bits ({@code st_mode}), owner and link count. */
public record FileStat(int mode, int uid, int gid, int nlink) {
    public static final int S_IFMT = 0170000, S_IFREG = 0100000, S_IFDIR = 0040000, S_ISVTX = 01000;

    public boolean isRegularFile() {
        return (mode & S_IFMT) == S_IFREG;
    }

    public boolean isDirectory() {
        return (mode & S_IFMT) == S_IFDIR;
    }
}

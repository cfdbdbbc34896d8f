package org.vfioexport.kernel.linux;

import org.junit.jupiter.api.Tag;
import org.vfioexport.kernel.VfioKernel;
import org.vfioexport.kernel.contract.KernelContract;

/**
 * The contract against the real kernel. Runs only inside the VM lab ({@code src/test/vm/run}), where the four
 * emulated devices are bound to vfio-pci; found through sysfs, as the service finds them. On Debian's kernel it
 * runs over the group path, on the lab-built kernel over the iommufd cdev path ({@link VmLabKernel}).
 */
@Tag("vm")
class LinuxKernelContractTest extends KernelContract {
    @Override
    protected VfioKernel createKernel() {
        return new LinuxKernel();
    }

    @Override
    protected OpenPath openPath() throws Exception {
        return VmLabKernel.checkedPath((LinuxKernel) kernel, roles().edu());
    }
}

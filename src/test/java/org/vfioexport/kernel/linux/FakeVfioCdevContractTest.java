package org.vfioexport.kernel.linux;

/**
 * The contract over {@link FakeVfio} with IOMMUFD and the VFIO cdevs, so that LinuxKernel takes the cdev path:
 * the normal build's check of what the VM lab's own kernel runs (the group path is {@link FakeVfioContractTest}).
 */
class FakeVfioCdevContractTest extends FakeVfioContractTest {
    @Override
    boolean withIommufd() {
        return true;
    }
}
